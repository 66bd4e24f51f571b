"""Storage: the buckets where Agora uploads recordings (S3, S3-compatible stores, Azure Blob).

``fetch`` is the entry point; ``location`` says where (bucket or container, prefix, endpoint,
credentials), ``selection`` decides what (shared, pure), ``transport`` is the per-vendor
listing + verified GET (``transfer``/``client`` for S3, ``azure`` for Azure Blob),
``sources`` turns a command's SOURCE (a folder, ``s3://`` or ``azure://``) into a local
folder through a reusable cache, ``backend``/``publish`` upload results. Nothing above this
package knows which vendor it talks to. boto3 and the Azure SDK are imported only when a
client is made.
"""
from ..agora.vendors import endpoint_for
from .fetch import FetchOptions, FetchReport, fetch, list_objects
from .location import (
    AzureLocation,
    S3Location,
    Settings,
    load_agora_storage_config,
    parse_azure_url,
    parse_location,
    parse_s3_url,
    settings_from_options,
)
from .selection import ObjectInfo, Selection, playlist_names_from_file_list

__all__ = ["FetchOptions", "FetchReport", "fetch", "list_objects", "S3Location", "AzureLocation", "Settings",
           "load_agora_storage_config", "parse_s3_url", "parse_azure_url", "parse_location", "settings_from_options", "ObjectInfo", "Selection", "playlist_names_from_file_list",
           "endpoint_for"]
