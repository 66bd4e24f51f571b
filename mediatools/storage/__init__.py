"""Storage: S3-compatible buckets where Agora uploads recordings.

``fetch`` is the entry point; ``location`` says where (bucket, prefix, endpoint,
credentials), ``select`` decides what, ``transfer`` moves bytes safely.
"""
from .fetch import FetchReport, fetch, list_objects
from .location import S3Location, Settings, load_agora_storage_config, parse_s3_url, settings_from_options
from .select import ObjectInfo, Selection, playlist_names_from_file_list
from ..agora.vendors import endpoint_for

__all__ = ["FetchReport", "fetch", "list_objects", "S3Location", "Settings", "load_agora_storage_config",
           "parse_s3_url", "settings_from_options", "ObjectInfo", "Selection", "playlist_names_from_file_list",
           "endpoint_for"]
