"""The one storage abstraction: a local directory or an S3 prefix, addressed by relative keys.

Every artifact reader and writer goes through :class:`Storage`. Writes are atomic: local files are
written to a temporary sibling and renamed; S3 ``PutObject`` is atomic by itself. Keys are
``/``-separated relative paths built only from validated ids (see :mod:`pipelines.ids`).
"""

from __future__ import annotations

import builtins
import os
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

from actors.cache import cache_dir


def process_umask() -> int:
    """This process's umask, read without changing it (``os.umask`` can only be read by setting it,
    which races with threads creating files)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)  # no /proc (not Linux): read it by setting it, and put it back at once
    os.umask(mask)
    return mask


def _temp_sibling(path: Path) -> tuple[int, str]:
    """A temporary file beside ``path`` (renamed over it when whole), with the permissions a plain
    ``open`` would give it under the umask: ``mkstemp`` makes 0600 files, and an artifact that only
    its writer can read is useless to a teammate or a web server reading the data dir."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~process_umask())
    return fd, tmp


class StorageError(RuntimeError):
    pass


def s3_client(endpoint_url: str | None = None):
    """The one way to build an S3 client: ``endpoint_url``, else ``S3_ENDPOINT_URL``, else AWS.

    Credentials come from boto3's own chain (environment, shared files, instance roles), never from
    arguments, so no secret has to travel through a Ray runtime env."""
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url or os.environ.get("S3_ENDPOINT_URL") or None)


def _check_key(key: str) -> str:
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"invalid storage key {key!r}")
    return key


class Storage(ABC):
    """Byte-level access to artifacts under one root."""

    uri: str

    @abstractmethod
    def read_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None:
        """Write ``data`` at ``key`` atomically: readers see the old object or the new one, never a part."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def list(self, prefix: str) -> list[str]:
        """Keys under ``prefix`` (recursive), sorted."""

    @abstractmethod
    def children(self, prefix: str) -> builtins.list[str]:
        """Names directly under ``prefix`` (one level, files and folders alike), sorted."""

    @abstractmethod
    def versions(self, prefix: str) -> dict[str, str]:
        """Files directly under ``prefix`` -> a tag that changes whenever the file is rewritten, from one
        listing (no reads): what a cache of many small files checks before reading any."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int: ...

    @abstractmethod
    def local_path(self, key: str) -> Path:
        """A local file holding the object (S3 objects are downloaded to a cache first)."""

    def read_text(self, key: str) -> str:
        return self.read_bytes(key).decode("utf-8")

    def write_text(self, key: str, text: str) -> None:
        self.write_bytes(key, text.encode("utf-8"))

    def upload_file(self, key: str, path: Path) -> None:
        self.write_bytes(key, Path(path).read_bytes())


class LocalStorage(Storage):
    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root).resolve()
        self.uri = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / _check_key(key)

    def read_bytes(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise FileNotFoundError(f"{self.uri}/{key}") from None

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _temp_sibling(path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def upload_file(self, key: str, path: Path) -> None:
        dest = self._path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = _temp_sibling(dest)
        os.close(fd)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, dest)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def list(self, prefix: str) -> list[str]:
        base = self._path(prefix.rstrip("/"))
        if base.is_file():
            return [prefix.rstrip("/")]
        if not base.is_dir():
            return []
        out = []
        for p in base.rglob("*"):
            if p.is_file() and not p.name.endswith(".tmp"):
                out.append(p.relative_to(self.root).as_posix())
        return sorted(out)

    def children(self, prefix: str) -> builtins.list[str]:
        base = self._path(prefix.rstrip("/"))
        return sorted(p.name for p in base.iterdir() if not p.name.endswith(".tmp")) if base.is_dir() else []

    def versions(self, prefix: str) -> dict[str, str]:
        base = self._path(prefix.rstrip("/"))
        if not base.is_dir():
            return {}
        out = {}
        for p in base.iterdir():
            if not p.name.endswith(".tmp") and p.is_file():
                st = p.stat()
                out[p.name] = f"{st.st_mtime_ns:x}-{st.st_size:x}"
        return out

    def delete_prefix(self, prefix: str) -> int:
        base = self._path(prefix.rstrip("/"))
        if base.is_file():
            base.unlink()
            return 1
        if not base.is_dir():
            return 0
        n = sum(1 for p in base.rglob("*") if p.is_file())
        shutil.rmtree(base)
        return n

    def local_path(self, key: str) -> Path:
        path = self._path(key)
        if not path.is_file():
            raise FileNotFoundError(f"{self.uri}/{key}")
        return path


class S3Storage(Storage):
    """Objects under ``s3://bucket/prefix``. ``S3_ENDPOINT_URL`` selects a non-AWS endpoint."""

    def __init__(self, bucket: str, prefix: str = "", *, client=None, cache_root: Path | None = None):
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.client = client or s3_client()
        self.uri = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.cache_root = cache_root or cache_dir()

    def _key(self, key: str) -> str:
        _check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def read_bytes(self, key: str) -> bytes:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"].read()
        except self.client.exceptions.NoSuchKey:
            raise FileNotFoundError(f"{self.uri}/{key}") from None

    def write_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def upload_file(self, key: str, path: Path) -> None:
        """Streams large files in multipart chunks (boto3's managed transfer); atomic on completion."""
        self.client.upload_file(str(path), self.bucket, self._key(key))

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def _iter_keys(self, prefix: str) -> Iterator[str]:
        full = self._key(prefix.rstrip("/")) if prefix else self.prefix
        paginator = self.client.get_paginator("list_objects_v2")
        strip = len(self.prefix) + 1 if self.prefix else 0
        for page in paginator.paginate(Bucket=self.bucket, Prefix=full):
            for obj in page.get("Contents", []):
                yield obj["Key"][strip:]

    def list(self, prefix: str) -> list[str]:
        return sorted(self._iter_keys(prefix))

    def children(self, prefix: str) -> builtins.list[str]:
        full = self._key(prefix.rstrip("/")) + "/"
        names: set[str] = set()
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full, Delimiter="/"):
            names.update(p["Prefix"][len(full) :].rstrip("/") for p in page.get("CommonPrefixes", []))
            names.update(o["Key"][len(full) :] for o in page.get("Contents", []))
        return sorted(n for n in names if n)

    def versions(self, prefix: str) -> dict[str, str]:
        full = self._key(prefix.rstrip("/")) + "/"
        out = {}
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=full, Delimiter="/"):
            for o in page.get("Contents", []):
                if o["Key"] != full:
                    out[o["Key"][len(full) :]] = str(o["ETag"]).strip('"')
        return out

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list(prefix)
        for i in range(0, len(keys), 1000):
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": [{"Key": self._key(k)} for k in keys[i : i + 1000]]})
        return len(keys)

    def local_path(self, key: str) -> Path:
        dest = self.cache_root / "s3" / self.bucket / self._key(key)
        if not dest.is_file():
            download_s3_object(self.client, self.bucket, self._key(key), dest)
        return dest


def parse_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StorageError(f"not an s3:// URI: {uri!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def fetch_to_cache(uri: str) -> Path:
    """A local path as is; an ``s3://`` URI is downloaded (once, atomically) into the cache dir."""
    if not uri.startswith("s3://"):
        return Path(uri)
    bucket, key = parse_s3_uri(uri)
    dest = cache_dir() / "s3" / bucket / key
    if not dest.is_file():
        download_s3_object(s3_client(), bucket, key, dest)
    return dest


def download_s3_object(client, bucket: str, key: str, dest: Path) -> Path:
    """Download one object atomically to ``dest``; a clear FileNotFoundError when it is missing."""
    from botocore.exceptions import ClientError

    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _temp_sibling(dest)
    os.close(fd)
    try:
        client.download_file(bucket, key, tmp)
        os.replace(tmp, dest)
    except ClientError as exc:
        Path(tmp).unlink(missing_ok=True)
        code = exc.response.get("Error", {}).get("Code")
        if code in ("404", "NoSuchKey", "NotFound"):
            raise FileNotFoundError(f"s3://{bucket}/{key} does not exist") from None
        raise
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return dest


def open_storage(uri: str | os.PathLike[str]) -> Storage:
    """``s3://bucket/prefix`` or a local directory path."""
    text = str(uri)
    if text.startswith("s3://"):
        bucket, prefix = parse_s3_uri(text)
        return S3Storage(bucket, prefix)
    return LocalStorage(text)
