"""Data portability: everything in a profile's database as one CSV per table in a zip.

The zip is plain text: it is what the trader asked for, written where they said. Broker
credentials are not in it (they are only in the keyring); ``credential_meta`` lists names
and dates only.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.storage.database import EXPORT_TABLES, Database


def export_zip(db: Database, path: Path, profile: str) -> dict[str, Any]:
    """Write the export to ``path`` (owner-only permissions) and return its manifest."""
    tables: dict[str, Any] = {}
    tmp = path.with_name(path.name + ".partial")
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "wb") as raw, zipfile.ZipFile(raw, "w", zipfile.ZIP_DEFLATED) as zf:
        for table in EXPORT_TABLES:
            columns, rows = db.dump_table(table)
            buf = io.StringIO()
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(rows)
            data = buf.getvalue().encode("utf-8")
            name = f"{table}.csv"
            zf.writestr(name, data)
            tables[table] = {
                "file": name,
                "rows": len(rows),
                "columns": columns,
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        manifest = {
            "format": "dalal-terminal-export",
            "format_version": 1,
            "profile": profile,
            "exported_at": datetime.now(UTC).isoformat(),
            "schema_version": db.schema_version,
            "tables": tables,
        }
        zf.writestr("manifest.json", json.dumps(manifest, indent=2, sort_keys=True))
    os.replace(tmp, path)
    return manifest
