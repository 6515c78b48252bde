"""The backup repository: layout, snapshots, manifests, catalog (docs/format.md).

    backup (ops/backup.py)
      -> open_repository / init_repository          repo.py
      -> runs/<id>.json                             layout.py
      -> archives (lakeguard.archive) + catalog      catalog_writer.py
      -> manifests/<id>.parquet                     manifest.py
      -> snapshots/<id>.json, written last           snapshot.py

Readers (snapshots, ls, find, query, check, restore) start from
``open_repository(store, location)`` and ``Repository.snapshots()`` /
``.snapshot(text)`` / ``.fetch_manifest(header, dir)`` / ``.open_archive(rel)``.
"""
