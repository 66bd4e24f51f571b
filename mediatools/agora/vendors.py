"""Agora ``storageConfig`` → an S3-compatible endpoint.

Agora names a bucket's home by ``vendor`` and a numeric ``region`` code (Agora's
"Third-party cloud storage regions" table). Every vendor we support speaks the S3
API at a per-region endpoint; this module is the one place that knows how to get
there. Azure (vendor 5) has no S3 API: it is reached on its own (``azure://`` addresses,
``storage/azure.py``), and asking for its S3 endpoint is a usage error saying so.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import UsageError

AWS_REGIONS = {
    0: "us-east-1", 1: "us-east-2", 2: "us-west-1", 3: "us-west-2", 4: "eu-west-1", 5: "eu-west-2",
    6: "eu-west-3", 7: "eu-central-1", 8: "ap-southeast-1", 9: "ap-southeast-2", 10: "ap-northeast-1",
    11: "ap-northeast-2", 12: "sa-east-1", 13: "ca-central-1", 14: "ap-south-1", 15: "cn-north-1",
    16: "cn-northwest-1", 18: "af-south-1", 19: "ap-east-1", 20: "ap-northeast-3", 21: "eu-north-1",
    22: "me-south-1", 24: "ap-southeast-3", 25: "eu-south-1",
}

ALIBABA_REGIONS = {
    0: "cn-hangzhou", 1: "cn-shanghai", 2: "cn-qingdao", 3: "cn-beijing", 4: "cn-zhangjiakou",
    5: "cn-huhehaote", 6: "cn-shenzhen", 7: "cn-hongkong", 8: "us-west-1", 9: "us-east-1",
    10: "ap-southeast-1", 11: "ap-southeast-2", 12: "ap-southeast-3", 13: "ap-southeast-5",
    14: "ap-northeast-1", 15: "ap-south-1", 16: "eu-central-1", 17: "eu-west-1", 18: "me-east-1",
    19: "ap-southeast-6", 20: "cn-heyuan", 21: "cn-guangzhou", 22: "cn-chengdu", 23: "cn-nanjing",
    24: "cn-fuzhou", 25: "cn-wulanchabu", 26: "cn-northeast-2", 27: "ap-southeast-7",
}

TENCENT_REGIONS = {
    0: "ap-beijing-1", 1: "ap-beijing", 2: "ap-shanghai", 3: "ap-guangzhou", 4: "ap-chengdu",
    5: "ap-chongqing", 6: "ap-shenzhen-fsi", 7: "ap-shanghai-fsi", 8: "ap-beijing-fsi", 9: "ap-hongkong",
    10: "ap-singapore", 11: "ap-mumbai", 12: "ap-seoul", 13: "ap-bangkok", 14: "ap-tokyo",
    15: "na-siliconvalley", 16: "na-ashburn", 17: "na-toronto", 18: "eu-frankfurt", 19: "eu-moscow",
}

HUAWEI_REGIONS = {
    0: "cn-north-1", 1: "cn-north-4", 2: "cn-east-2", 3: "cn-east-3", 4: "cn-south-1", 5: "cn-southwest-2",
    6: "ap-southeast-1", 7: "ap-southeast-2", 8: "ap-southeast-3", 9: "af-south-1",
}

AZURE_VENDOR = 5

BAIDU_REGIONS = {0: "bj", 1: "bd", 2: "su", 3: "gz", 4: "fwh", 5: "hkg", 6: "fsh"}

VENDOR_NAMES = {1: "Amazon S3", 2: "Alibaba Cloud OSS", 3: "Tencent Cloud COS", 5: "Microsoft Azure Blob",
                6: "Google Cloud Storage", 7: "Huawei Cloud OBS", 8: "Baidu AI Cloud BOS",
                11: "S3-compatible storage"}


# vendor → (region table, endpoint); these services accept only virtual-hosted requests
_S3_COMPATIBLE = {
    2: (ALIBABA_REGIONS, "https://oss-{r}.aliyuncs.com"),
    3: (TENCENT_REGIONS, "https://cos.{r}.myqcloud.com"),
    7: (HUAWEI_REGIONS, "https://obs.{r}.myhuaweicloud.com"),
    8: (BAIDU_REGIONS, "https://s3.{r}.bcebos.com"),
}


@dataclass(frozen=True)
class Endpoint:
    """Where to send S3 requests: ``endpoint_url`` None means boto3's AWS default."""

    endpoint_url: str | None
    region: str | None
    addressing_style: str = "auto"   # OSS and COS only accept virtual-hosted requests


def _region(table: dict[int, str], vendor: int, code: int) -> str:
    try:
        return table[int(code)]
    except (KeyError, ValueError):
        raise UsageError(f"unknown region code {code} for vendor {vendor} ({VENDOR_NAMES[vendor]}); "
                         "pass --endpoint-url and --region instead") from None


def endpoint_for(vendor: int, region_code: int | None = 0, endpoint: str | None = None) -> Endpoint:
    """Map Agora's (vendor, region) pair to the vendor's S3-compatible endpoint."""
    code = 0 if region_code is None else region_code
    if vendor == 1:
        return Endpoint(None, _region(AWS_REGIONS, vendor, code))
    if vendor in _S3_COMPATIBLE:
        table, url = _S3_COMPATIBLE[vendor]
        r = _region(table, vendor, code)
        return Endpoint(url.format(r=r), r, "virtual")
    if vendor == 5:
        raise UsageError("vendor 5 (Microsoft Azure Blob) has no S3 API; give the address as "
                         "azure://ACCOUNT/CONTAINER/PREFIX")
    if vendor == 6:
        return Endpoint("https://storage.googleapis.com", "auto")
    if vendor == 11:
        if not endpoint:
            raise UsageError("vendor 11 needs its endpoint (extensionParams.endpoint or --endpoint-url)")
        url = endpoint if "://" in endpoint else f"https://{endpoint}"
        return Endpoint(url, None)
    raise UsageError(f"unknown storage vendor {vendor} (known: "
                     + ", ".join(f"{k} {v}" for k, v in VENDOR_NAMES.items()) + ")")
