"""LocalStore: a directory used as a bucket.

Keys map to files under the root (``a/b/c`` -> ``ROOT/a/b/c``). A key is data,
not a path: keys with ``..`` or ``.`` segments, a leading ``/``, empty segments
(``a//b``, a trailing ``/``) or NUL bytes are refused with ``UsageError``, so
nothing is ever read or written outside the root.

- ``put`` writes a temporary file in the target folder and renames it over the
  key (``os.replace``), so readers see the old or the new file, never half of
  one. Temporary names start with ``.lakeguard-tmp-``; listings skip them and
  keys may not use that prefix. A file that replaces another is fsynced
  before the rename; a new one only with ``sync_new`` (see ``__init__``).
- ETag, content type and user metadata live in one extended attribute
  (``user.lakeguard``) written with the file, no sidecar files: packed in
  binary when it fits in the inode (an MD5 ETag, a short content type, no
  user metadata), else JSON (see ``_pack_attrs``). The ETag (the
  MD5 computed while the bytes were written, or the source's ETag that a
  caller vouches for, see ``Store.put``) is trusted only while the file's
  size and mtime still match what was recorded; a file changed by another
  program, or a filesystem without user xattrs, has ``etag=None``.
- Listings walk folders in key order (a folder ``d`` sorts as ``d/``), one
  folder's names in memory at a time, never the whole tree.
- Emptied folders are removed on delete, as S3 has no empty "folders".
- A key and a folder cannot share a name (``a`` and ``a/b``): such a write
  raises ``UnsupportedError``.
- Writes and deletes never follow a symbolic link to a folder below the root,
  wherever it points (inside the root or not): a key under one is refused
  with ``UsageError``, as a ``..`` key is. Each folder is opened relative to
  the one above it with ``O_NOFOLLOW`` and the file is created in the open
  folder, so a link cannot be swapped in between a check and the write. A
  link as the key's own name is replaced by the file, never followed. The
  root itself may be a link: the user named it. Reads follow links as the
  filesystem does; listings do not descend into linked folders.
- No versioning: ``version_id`` is None (``"null"`` is accepted as "the only
  version", as S3 does for unversioned buckets).
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import hashlib
import itertools
import json
import os
import re
import secrets
import stat
import struct
import threading
import weakref
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from lakeguard.errors import (
    AccessDeniedError,
    BucketNotFoundError,
    NotFoundError,
    StoreError,
    UnsupportedError,
    UsageError,
)
from lakeguard.storage.base import (
    DEFAULT_PART_SIZE,
    Capabilities,
    DeleteResult,
    GetBytesMixin,
    ObjectInfo,
    ObjectStream,
    PutResult,
    Store,
)

TMP_PREFIX = ".lakeguard-tmp-"
XATTR = "user.lakeguard"
CHUNK = 1024 * 1024

_WRITE_BUFFER = 64 * 1024
_setxattr = getattr(os, "setxattr", None)
_getxattr = getattr(os, "getxattr", None)
# The packed attribute: kind, MD5, size, mtime_ns, then (kind 2) the part count
# of a multipart ETag, then the content type (UTF-8) to the end.
_PACKED = struct.Struct("<B16sQQ")
_PARTS = struct.Struct("<I")
_SINGLE, _MULTIPART = 1, 2
# ext4 keeps an attribute in the inode while its value is at most 60 bytes
# under this name (256-byte inodes; measured with st_blocks by value size).
# The JSON form took 100-170 bytes: one more 4 KiB block per file, half again
# the disk of an 8 KiB file.
_IN_INODE = 60
_MD5_ETAG = re.compile(r"([0-9a-f]{32})(?:-([1-9][0-9]{0,8}))?")  # decodes to the same text


def check_key(key: str) -> str:
    """Return ``key`` if it is safe to map under a root directory, else raise UsageError."""
    if not key:
        raise UsageError("empty object key")
    if "\x00" in key:
        raise UsageError(f"object key {key!r} contains a NUL byte")
    if key.startswith("/"):
        raise UsageError(f"object key {key!r} starts with '/'")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise UsageError(
                f"object key {key!r} has an empty, '.' or '..' segment and cannot be "
                "stored in a directory"
            )
        if segment.startswith(TMP_PREFIX):
            raise UsageError(f"object key {key!r} uses the reserved prefix {TMP_PREFIX!r}")
    return key


# Opens one folder below the root without following a link in its place.
_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)
_DIR_FLAGS |= getattr(os, "O_CLOEXEC", 0)
# Opens the root, following a link: the user named it.
_ROOT_FLAGS = _DIR_FLAGS & ~getattr(os, "O_NOFOLLOW", 0)
_WRITE_OPS = frozenset({"put", "copy", "delete"})


def blocking_file(path: Path) -> Path | None:
    """The file (or other non-folder) in the way of ``path`` being a folder, if any.

    ``path`` itself when it exists and is not a folder; else the nearest
    ancestor that exists and is not one; None when nothing is in the way
    (``path`` is a folder, or only missing folders lie between).
    """
    for candidate in (path, *path.parents):
        if candidate.is_dir():
            return None
        if os.path.lexists(candidate):
            return candidate
    return None


class WriteForecast:
    """Why writing keys under ``root`` would fail, without writing: for dry runs.

    Asked key by key, it names what a real run's LocalStore.put would refuse:
    a folder on the way that is a file or a symbolic link, a folder where the
    file would go, and keys planned before that clash with it ("b" and "b/x":
    the second one asked fails). Folders are looked at once each; the folders
    and planned keys remembered are the last ``remember`` of each (a
    forecast, in bounded memory).
    """

    def __init__(self, root: Path, *, remember: int = 100_000) -> None:
        self.root = root
        self._folders: dict[str, str] = {}  # folder -> "dir", "missing", "link", "file"
        self._planned: dict[str, None] = {}  # keys planned as files, oldest first
        self._planned_folders: dict[str, None] = {}  # folders those keys make
        self._remember = remember

    def obstacle(self, key: str) -> str | None:
        """Why a put of ``key`` would fail (its shape, or what is in its way), or
        None; ``key`` then counts as planned."""
        try:
            check_key(key)
        except UsageError as exc:
            return exc.message
        parts = key.split("/")
        made = False  # a folder on the way is missing: the write makes it and those below
        for depth in range(1, len(parts)):
            folder = "/".join(parts[:depth])
            if folder in self._planned:
                kind = "file"
            elif made:
                continue
            else:
                kind = self._kind(folder)
            if kind in ("dir", "missing"):
                made = kind == "missing"
                continue
            if kind == "link":
                return _under_link(self.root, key, folder)
            return _parent_is_object(self.root, key, "write")
        path = self.root / key
        if key in self._planned_folders or (not made and path.is_dir() and not path.is_symlink()):
            return _folder_in_place(self.root, key)
        _remember(self._planned, key, None, self._remember)
        for depth in range(1, len(parts)):
            _remember(self._planned_folders, "/".join(parts[:depth]), None, self._remember)
        return None

    def _kind(self, folder: str) -> str:
        kind = self._folders.get(folder)
        if kind is None:
            try:
                mode = os.lstat(self.root / folder).st_mode
            except OSError:
                kind = "missing"
            else:
                kind = "link" if stat.S_ISLNK(mode) else "dir" if stat.S_ISDIR(mode) else "file"
            _remember(self._folders, folder, kind, self._remember)
        return kind


# Why a key cannot be written, in the words of both LocalStore and WriteForecast.
def _under_link(root: Path, key: str, folder: str) -> str:
    return (
        f"object key {key!r} lies under {root}/{folder}, a symbolic link: "
        "keys are written only into real folders under the directory"
    )


def _parent_is_object(root: Path, key: str, op: str) -> str:
    return f"cannot {op} {root}/{key}: a parent folder is an object"


def _folder_in_place(root: Path, key: str) -> str:
    return f"cannot write {root}/{key}: a folder of that name exists"


def _remember(table: dict[str, Any], key: str, value: Any, limit: int) -> None:
    table[key] = value
    if len(table) > limit:
        del table[next(iter(table))]


def not_a_directory(path: Path, role: str = "") -> UsageError | None:
    """A UsageError naming what is in the way when ``path`` cannot be a folder."""
    blocker = blocking_file(path)
    if blocker is None:
        return None
    name = f"{role} {path}" if role else str(path)
    if blocker == path:
        return UsageError(f"{name} is not a directory")
    return UsageError(f"{name} is not a directory: {blocker} is a file")


def _lexists(name: str, folder: int) -> bool:
    try:
        os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def _is_folder(name: str, folder: int) -> bool:
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=folder, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _mtime(st: os.stat_result) -> datetime:
    return datetime.fromtimestamp(st.st_mtime_ns / 1e9, UTC)


class _FileStream:
    """Streams ``remaining`` bytes (or to EOF) of an open file, in 1 MiB chunks."""

    def __init__(self, info: ObjectInfo, handle: Any, remaining: int | None) -> None:
        self.info = info
        self._handle = handle
        self._remaining = remaining

    def __iter__(self) -> Iterator[bytes]:
        try:
            while self._remaining is None or self._remaining > 0:
                want = CHUNK if self._remaining is None else min(CHUNK, self._remaining)
                chunk = self._handle.read(want)
                if not chunk:
                    break
                if self._remaining is not None:
                    self._remaining -= len(chunk)
                yield chunk
        finally:
            self.close()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> _FileStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class _FolderCache:
    """Folders of a store opened lately, their descriptors shared by the writers.

    Opening the root and each folder below it for every file cost a restore
    of 2,206 files 0.5-0.8 s of kernel time (measured: 7,291 openat calls
    at 126 us each, 16 threads opening the same few folders). A descriptor
    names the folder itself, not its path, so a link put in a folder's
    place later cannot redirect a write. Each user releases what it got; a
    descriptor dropped from the cache (every delete clears it, as deletes
    prune empty folders; a write that finds its folder gone clears it too)
    is closed once its last user is done.
    """

    SIZE = 64

    def __init__(self) -> None:
        self._by_path: dict[str, int] = {}
        self._users: dict[int, int] = {}  # fd -> users, for every fd handed out
        self._dropped: set[int] = set()  # no longer cached: close when unused
        self._lock = threading.Lock()
        weakref.finalize(self, _close_all, self._by_path)

    def get(self, path: str) -> int | None:
        with self._lock:
            fd = self._by_path.get(path)
            if fd is not None:
                self._users[fd] += 1
            return fd

    def put(self, path: str, fd: int) -> int:
        """Cache ``fd`` (just opened, one user) for ``path``; the fd to use."""
        with self._lock:
            found = self._by_path.get(path)
            if found is not None:  # another writer opened it meanwhile
                os.close(fd)
                self._users[found] += 1
                return found
            self._by_path[path] = fd
            self._users[fd] = 1
            if len(self._by_path) > self.SIZE:
                self._drop(next(iter(self._by_path)))
            return fd

    def release(self, fd: int) -> None:
        with self._lock:
            self._users[fd] -= 1
            if fd in self._dropped and not self._users[fd]:
                self._close(fd)

    def clear(self) -> None:
        with self._lock:
            for path in list(self._by_path):
                self._drop(path)

    def _drop(self, path: str) -> None:
        fd = self._by_path.pop(path)
        if self._users[fd]:
            self._dropped.add(fd)
        else:
            self._close(fd)

    def _close(self, fd: int) -> None:
        self._dropped.discard(fd)
        del self._users[fd]
        with contextlib.suppress(OSError):
            os.close(fd)


def _close_all(by_path: dict[str, int]) -> None:
    for fd in by_path.values():
        with contextlib.suppress(OSError):
            os.close(fd)
    by_path.clear()


def _pack_attrs(
    etag: str,
    size: int,
    mtime_ns: int,
    content_type: str | None,
    metadata: Mapping[str, str] | None,
) -> bytes:
    """The attribute's value: packed when that fits in the inode, else JSON.

    Packed by hand (struct): JSON, even with short keys, cannot hold a hex
    MD5, a size, a nanosecond mtime and a content type in 60 bytes.
    """
    shape = _MD5_ETAG.fullmatch(etag)
    # A clock set before 1970 gives a negative mtime_ns: JSON then.
    if shape is not None and not metadata and 0 <= mtime_ns < 2**64:
        parts = shape.group(2)
        packed = _PACKED.pack(
            _MULTIPART if parts else _SINGLE, bytes.fromhex(shape.group(1)), size, mtime_ns
        )
        if parts:
            packed += _PARTS.pack(int(parts))
        packed += (content_type or "").encode()
        if len(packed) <= _IN_INODE:
            return packed
    # Off the common path now (metadata, a long content type, another ETag).
    attrs: dict[str, Any] = {"etag": etag, "size": size, "mtime_ns": mtime_ns}
    if content_type:
        attrs["content_type"] = content_type
    if metadata:
        attrs["metadata"] = dict(metadata)
    return json.dumps(attrs, separators=(",", ":")).encode()


def _unpack_attrs(value: bytes) -> dict[str, Any] | None:
    """What ``_pack_attrs`` wrote (either form); None when it is neither."""
    if value[:1] == b"{":
        try:
            decoded: object = json.loads(value)
        except ValueError:
            return None
        return decoded if isinstance(decoded, dict) else None
    if len(value) < _PACKED.size or value[0] not in (_SINGLE, _MULTIPART):
        return None
    kind, digest, size, mtime_ns = _PACKED.unpack_from(value)
    rest = value[_PACKED.size :]
    etag = digest.hex()
    if kind == _MULTIPART:
        if len(rest) < _PARTS.size:
            return None
        etag += f"-{_PARTS.unpack_from(rest)[0]}"
        rest = rest[_PARTS.size :]
    attrs: dict[str, Any] = {"etag": etag, "size": size, "mtime_ns": mtime_ns}
    if rest:
        try:
            attrs["content_type"] = rest.decode()
        except UnicodeDecodeError:
            return None
    return attrs


def _write_all(fd: int, chunks: list[bytes | memoryview]) -> None:
    """Write ``chunks`` in order (joined first when there are several), every byte."""
    if not chunks:
        return
    view = memoryview(chunks[0] if len(chunks) == 1 else b"".join(chunks))
    while view:  # a write may take fewer bytes than asked
        view = view[os.write(fd, view) :]


class LocalStore(GetBytesMixin):
    """A directory as a bucket. See the module docstring for how keys map to files."""

    def __init__(self, root: str | os.PathLike[str], *, sync_new: bool = True) -> None:
        # A file that replaces another is always fsynced before the rename, so
        # a crash never swaps good bytes for an empty file. A new file is
        # fsynced too when ``sync_new``: a backup repository on local disk
        # relies on that order (archives durable before the snapshot that
        # names them). Data targets (restore, sync, pitr --to) skip it, as cp,
        # rsync and restic do: a crash can leave a new file empty, which a
        # re-run rewrites, and there was nothing there to lose. Measured:
        # fsync of every new file cost a 1.3 GB restore 1-1.5 s of its 7.
        self.root = Path(root).absolute()
        self._sync_new = sync_new
        self._folders = _FolderCache()
        self._tmp_prefix = f"{TMP_PREFIX}{secrets.token_hex(8)}-"
        self._tmp_numbers = itertools.count()  # next() on it is atomic: safe across threads

    @property
    def url(self) -> str:
        return str(self.root)

    @property
    def capabilities(self) -> Capabilities:
        return Capabilities(
            versioning=False,
            server_side_copy=True,
            ranged_reads=True,
            multipart=False,
            checksums=False,
        )

    # -- helpers ---------------------------------------------------------------

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _missing_root(self, op: str) -> BucketNotFoundError | UsageError:
        in_the_way = not_a_directory(self.root)
        if in_the_way is not None:
            return in_the_way
        hint = ": create it first" if op in _WRITE_OPS else ""
        return BucketNotFoundError(f"directory {self.root} does not exist{hint}", op=op)

    def _require_root(self, op: str) -> None:
        if not self.root.is_dir():
            raise self._missing_root(op)

    def _os_error(self, err: OSError, op: str, key: str | None) -> StoreError | UsageError:
        where = f"{self.root}/{key}" if key else str(self.root)
        if isinstance(err, FileNotFoundError | NotADirectoryError | IsADirectoryError):
            if not self.root.is_dir():
                return self._missing_root(op)
            return NotFoundError(f"{where} does not exist", op=op, key=key)
        if isinstance(err, PermissionError):
            return AccessDeniedError(
                f"permission denied to {op} {where}: check the directory's permissions",
                op=op,
                key=key,
            )
        if err.errno == errno.ENAMETOOLONG:
            return UsageError(f"object key {key!r} is too long for this filesystem")
        return StoreError(f"cannot {op} {where}: {err.strerror or err}", op=op, key=key)

    def _check_version(self, key: str, version_id: str | None) -> None:
        if version_id not in (None, "null"):
            raise NotFoundError(
                f"{self.root}/{key} has no version {version_id}: a directory keeps no versions",
                op="get",
                key=key,
            )

    @staticmethod
    def _attrs(path: str | Path, st: os.stat_result) -> dict[str, Any]:
        """The recorded attributes; ``etag`` dropped when the file changed since."""
        if _getxattr is None:
            return {}
        try:
            attrs = _unpack_attrs(_getxattr(path, XATTR))
        except OSError:
            return {}
        if attrs is None:
            return {}
        if attrs.get("size") != st.st_size or attrs.get("mtime_ns") != st.st_mtime_ns:
            attrs.pop("etag", None)
        return attrs

    def _info(self, key: str, path: str | Path, st: os.stat_result, *, full: bool) -> ObjectInfo:
        attrs = self._attrs(path, st)
        metadata = attrs.get("metadata")
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=attrs.get("etag"),
            last_modified=_mtime(st),
            content_type=attrs.get("content_type") if full else None,
            metadata=(dict(metadata) if isinstance(metadata, dict) else {}) if full else None,
        )

    def _write(
        self,
        key: str,
        chunks: Iterable[bytes | memoryview],
        *,
        content_type: str | None,
        metadata: Mapping[str, str] | None,
        op: str = "put",
        etag: str | None = None,
    ) -> PutResult:
        check_key(key)
        folder, fd, tmp, name = self._open_temp(key, op)
        # A caller that vouches for the ETag saves hashing every byte (MD5:
        # 1.5-2 CPU-seconds per GB); otherwise the ETag is computed as written.
        digest = None if etag else hashlib.md5()
        size = 0
        try:
            # Plain os.write, not a file object: io.open's fstat, lseek and
            # buffer cost a small file a tenth of its write. Small chunks are
            # gathered into writes of _WRITE_BUFFER bytes.
            try:
                pending: list[bytes | memoryview] = []
                pending_size = 0
                for chunk in chunks:
                    if digest is not None:
                        digest.update(chunk)
                    size += len(chunk)
                    pending.append(chunk)
                    pending_size += len(chunk)
                    if pending_size >= _WRITE_BUFFER:
                        _write_all(fd, pending)
                        pending, pending_size = [], 0
                _write_all(fd, pending)
                if self._sync_new or _lexists(name, folder):
                    os.fsync(fd)
                st = os.fstat(fd)
                if digest is not None:
                    etag = digest.hexdigest()
                self._set_attrs(fd, str(etag), st, content_type, metadata)
            finally:
                os.close(fd)
            try:
                # Renames over a link in the key's place: the link goes, its target stays.
                os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
            except IsADirectoryError as err:
                raise UnsupportedError(
                    _folder_in_place(self.root, key),
                    op=op,
                    key=key,
                ) from err
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=folder)
            raise
        finally:
            self._folders.release(folder)
        return PutResult(key, str(etag), None, size)

    def _open_temp(self, key: str, op: str) -> tuple[int, int, str, str]:
        """The key's folder (open), a new temporary file in it (open) and both names."""
        # A concurrent delete may prune the folder between opening it and
        # creating the file in it: retry.
        for _ in range(5):
            try:
                opened = self._open_folder(key, op, create=True)
            except NotFoundError:  # a folder on the way was pruned as it was made
                self._folders.clear()
                continue
            assert opened is not None
            folder, name = opened
            # Unique without a syscall per file: this store's random prefix and a counter.
            tmp = f"{self._tmp_prefix}{next(self._tmp_numbers):x}"
            try:
                flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
                return folder, os.open(tmp, flags, 0o666, dir_fd=folder), tmp, name
            except FileNotFoundError:
                self._folders.release(folder)
                self._folders.clear()  # the folder was removed since it was opened
                continue
            except OSError as err:
                self._folders.release(folder)
                raise self._os_error(err, op, key) from err
        raise StoreError(f"cannot create folder for {self.root}/{key}", op=op, key=key)

    def _open_folder(self, key: str, op: str, *, create: bool) -> tuple[int, str] | None:
        """The key's folder, opened without following links, and the key's name in it.

        Each folder below the root is opened relative to its parent with
        ``O_NOFOLLOW`` (and made when missing and ``create``): a link in the
        way is refused, whatever it points at, so a write or a delete lands
        in the root's own tree or nowhere. None when a folder is missing and
        not ``create``. Costs one open per folder level, no path resolution.
        """
        *folders, name = key.split("/")
        path = "/".join(folders)
        cached = self._folders.get(path)
        if cached is not None:
            return cached, name
        try:
            current = os.open(self.root, _ROOT_FLAGS)
        except OSError as err:
            if isinstance(err, FileNotFoundError | NotADirectoryError):
                raise self._missing_root(op) from err
            raise self._os_error(err, op, key) from err
        try:
            for depth, part in enumerate(folders):
                try:
                    below = self._open_below(current, part, create=create)
                except OSError as err:
                    where = "/".join(folders[: depth + 1])
                    raise self._folder_error(err, current, part, where, op, key) from err
                os.close(current)
                current = below
                if current < 0:
                    return None
        except BaseException:
            if current >= 0:
                os.close(current)
            raise
        return self._folders.put(path, current), name

    @staticmethod
    def _open_below(parent: int, part: str, *, create: bool) -> int:
        """Open folder ``part`` of ``parent`` (made when missing and ``create``; else -1)."""
        try:
            return os.open(part, _DIR_FLAGS, dir_fd=parent)
        except FileNotFoundError:
            if not create:
                return -1
        with contextlib.suppress(FileExistsError):  # made meanwhile by another writer
            os.mkdir(part, 0o777, dir_fd=parent)
        return os.open(part, _DIR_FLAGS, dir_fd=parent)

    def _folder_error(
        self, err: OSError, parent: int, part: str, where: str, op: str, key: str
    ) -> StoreError | UsageError:
        if err.errno in (errno.ENOTDIR, errno.ELOOP, errno.EEXIST):
            try:
                is_link = stat.S_ISLNK(os.stat(part, dir_fd=parent, follow_symlinks=False).st_mode)
            except OSError:
                is_link = False
            if is_link:
                return UsageError(_under_link(self.root, key, where))
            return UnsupportedError(_parent_is_object(self.root, key, op), op=op, key=key)
        return self._os_error(err, op, key)

    @staticmethod
    def _set_attrs(
        fd: int,
        etag: str,
        st: os.stat_result,
        content_type: str | None,
        metadata: Mapping[str, str] | None,
    ) -> None:
        if _setxattr is None:
            return
        value = _pack_attrs(etag, st.st_size, st.st_mtime_ns, content_type, metadata)
        # Filesystems without user xattrs (or too-large metadata): no ETag, no harm.
        with contextlib.suppress(OSError):
            _setxattr(fd, XATTR, value)

    # -- reads -----------------------------------------------------------------

    def list(self, prefix: str = "", *, start_after: str | None = None) -> Iterator[ObjectInfo]:
        self._require_root("list")
        folder, _, name_prefix = prefix.rpartition("/")
        if folder:
            check_key(folder)
            folder += "/"
        yield from self._walk(self.root / folder, folder, name_prefix, start_after)

    def _walk(
        self, directory: Path, base: str, name_prefix: str, start_after: str | None
    ) -> Iterator[ObjectInfo]:
        try:
            with os.scandir(directory) as scan:
                entries = [
                    (base + e.name + ("/" if e.is_dir(follow_symlinks=False) else ""), e)
                    for e in scan
                    if e.name.startswith(name_prefix) and not e.name.startswith(TMP_PREFIX)
                ]
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as err:
            raise self._os_error(err, "list", base or None) from err
        # A folder sorts as "name/", which puts its keys exactly where S3's
        # lexicographic order puts them ("a-b" < "a/x" < "a0").
        entries.sort(key=lambda item: item[0])
        for sort_key, entry in entries:
            if sort_key.endswith("/"):
                if (
                    start_after is not None
                    and sort_key < start_after
                    and not start_after.startswith(sort_key)
                ):
                    continue  # every key in this folder sorts before start_after
                yield from self._walk(Path(entry.path), sort_key, "", start_after)
                continue
            if start_after is not None and sort_key <= start_after:
                continue
            try:
                if not entry.is_file():
                    continue  # a socket, a dangling link
                st = entry.stat()
            except FileNotFoundError:
                continue  # deleted while listing
            yield self._info(sort_key, entry.path, st, full=False)

    def list_versions(self, prefix: str = "") -> Iterator[ObjectInfo]:
        return self.list(prefix)

    def list_prefixes(self, prefix: str = "") -> builtins.list[str]:
        self._require_root("list")
        folder, _, name_prefix = prefix.rpartition("/")
        if folder:
            check_key(folder)
            folder += "/"
        found: builtins.list[str] = []
        try:
            with os.scandir(self.root / folder) as scan:
                for entry in scan:
                    if (
                        entry.name.startswith(name_prefix)
                        and not entry.name.startswith(TMP_PREFIX)
                        and entry.is_dir(follow_symlinks=False)
                        and self._holds_objects(Path(entry.path))
                    ):
                        found.append(f"{folder}{entry.name}/")
        except (FileNotFoundError, NotADirectoryError):
            return []
        return sorted(found)

    def _holds_objects(self, directory: Path) -> bool:
        """Whether a folder holds at least one object (S3 shows no empty folders)."""
        return next(self._walk(directory, "", "", None), None) is not None

    def head(self, key: str, *, version_id: str | None = None) -> ObjectInfo:
        path = self._path(key)
        self._check_version(key, version_id)
        try:
            st = path.stat()
        except OSError as err:
            raise self._os_error(err, "head", key) from err
        if not path.is_file():
            raise NotFoundError(f"{self.root}/{key} does not exist", op="head", key=key)
        return self._info(key, path, st, full=True)

    def get(
        self,
        key: str,
        *,
        version_id: str | None = None,
        offset: int = 0,
        length: int | None = None,
    ) -> ObjectStream:
        path = self._path(key)
        self._check_version(key, version_id)
        if offset < 0 or (length is not None and length < 0):
            raise UsageError(f"invalid range offset={offset} length={length}")
        try:
            handle = path.open("rb")
        except OSError as err:
            raise self._os_error(err, "get", key) from err
        try:
            st = os.fstat(handle.fileno())
            info = self._info(key, path, st, full=True)
            if offset:
                handle.seek(offset)
        except BaseException:
            handle.close()
            raise
        return _FileStream(info, handle, length)

    # -- writes ----------------------------------------------------------------

    def put(
        self,
        key: str,
        data: bytes | memoryview | Iterable[bytes],
        *,
        content_type: str | None = None,
        metadata: Mapping[str, str] | None = None,
        part_size: int = DEFAULT_PART_SIZE,
        etag: str | None = None,
    ) -> PutResult:
        chunks: Iterable[bytes | memoryview]
        if isinstance(data, bytes):
            chunks = [data]
        elif isinstance(data, bytearray | memoryview):
            chunks = [memoryview(data).cast("B")]  # written as is, not copied first
        else:
            chunks = data
        return self._write(key, chunks, content_type=content_type, metadata=metadata, etag=etag)

    def _copy_file(
        self,
        source: LocalStore,
        src_key: str,
        dst_key: str,
        src_version_id: str | None,
        metadata: Mapping[str, str] | None,
    ) -> PutResult:
        with source.get(src_key, version_id=src_version_id) as stream:
            info = stream.info
            return self._write(
                dst_key,
                stream,
                content_type=info.content_type,
                metadata=metadata if metadata is not None else info.metadata,
                op="copy",
            )

    def copy(
        self,
        src_key: str,
        dst_key: str,
        *,
        src_version_id: str | None = None,
        metadata: Mapping[str, str] | None = None,
        src_info: ObjectInfo | None = None,
    ) -> PutResult:
        # src_info saves nothing here: the copy opens the file and its attributes once.
        return self._copy_file(self, src_key, dst_key, src_version_id, metadata)

    def copy_from(
        self,
        source: Store,
        src_key: str,
        dst_key: str,
        *,
        src_version_id: str | None = None,
        src_info: ObjectInfo | None = None,
    ) -> PutResult:
        if not isinstance(source, LocalStore):
            raise UnsupportedError(
                f"cannot copy directly from {source.url} to {self.url}", op="copy", key=src_key
            )
        return self._copy_file(source, src_key, dst_key, src_version_id, None)

    def delete(self, key: str, *, version_id: str | None = None) -> DeleteResult:
        check_key(key)
        self._check_version(key, version_id)
        try:
            opened = self._open_folder(key, "delete", create=False)
        except UnsupportedError:
            return DeleteResult(key)  # a parent is a file: the key is not there
        if opened is None:
            return DeleteResult(key)  # as S3: deleting what is not there succeeds
        folder, name = opened
        try:
            os.unlink(name, dir_fd=folder)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return DeleteResult(key)
        except PermissionError as err:
            if _is_folder(name, folder):
                return DeleteResult(key)  # EPERM is how some systems refuse unlinking a folder
            raise self._os_error(err, "delete", key) from err
        except OSError as err:
            raise self._os_error(err, "delete", key) from err
        finally:
            self._folders.release(folder)
        # The folders on the way were just opened without following links:
        # pruning by path removes only real, empty folders under the root.
        self._folders.clear()
        parent = (self.root / key).parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break  # not empty (or already gone): stop pruning
            parent = parent.parent
        return DeleteResult(key)

    # -- bucket ----------------------------------------------------------------

    def versioning(self) -> str | None:
        self._require_root("versioning")
        return None

    def set_versioning(self, enabled: bool) -> None:
        raise UnsupportedError(f"{self.url} is a directory: it cannot keep versions")

    def exists(self) -> bool:
        return self.root.is_dir()

    def create(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as err:
            raise not_a_directory(self.root) or UsageError(
                f"{self.root} is not a directory"
            ) from err
        except OSError as err:
            raise self._os_error(err, "create", None) from err
