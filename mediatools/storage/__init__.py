"""Storage: the buckets where Agora uploads recordings (S3 and S3-compatible stores).

``fetch`` is the entry point; ``location`` says where (bucket, prefix, endpoint,
credentials), ``selection`` decides what, ``transfer`` moves bytes safely, ``client`` makes
the boto3 client, ``sources`` turns a command's SOURCE (a folder or ``s3://``) into a
local folder through a reusable cache. Uploading (publishing results) lands here too.
boto3 is imported only when a client is made.
"""
from ..agora.vendors import endpoint_for
from .fetch import FetchOptions, FetchReport, fetch, list_objects
from .location import S3Location, Settings, load_agora_storage_config, parse_s3_url, settings_from_options
from .selection import ObjectInfo, Selection, playlist_names_from_file_list

__all__ = ["FetchOptions", "FetchReport", "fetch", "list_objects", "S3Location", "Settings", "load_agora_storage_config",
           "parse_s3_url", "settings_from_options", "ObjectInfo", "Selection", "playlist_names_from_file_list",
           "endpoint_for"]
