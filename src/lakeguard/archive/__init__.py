"""Seekable tar.zst archives (docs/format.md, "Archive").

Writing (writer.py), pulled by ``store.put(key, writer.stream(...))`` so the
archive is uploaded as it is produced, never held whole::

    for each object, in key order:
        tar header(s) (pax) + data + padding
          -> cut into frames: one per member, or one per 4 MiB block of a large one
          -> SHA-256 of the data as it passes (hashing.StreamHasher)
          -> zstd frame (content checksum) -> yielded to the upload
          -> MemberRecord(frame_offset, frame_length, sha256, ...)
    manifest.json member (one frame), end-of-archive frame (1,024 zeros)
    seek table (skippable frame, zstd seekable format)       seektable.py

Reading (reader.py)::

    ArchiveReader(store, key)
        .seek_table()       one ranged GET of the tail
        .manifest()         one more ranged GET: the manifest.json frame
        .open_member(offset, length)  one ranged GET of a member's frames
            -> zstd decompress across frames -> tar header -> data chunks
"""
