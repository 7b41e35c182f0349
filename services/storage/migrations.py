"""Numbered schema migrations, applied in order at open and tracked in ``PRAGMA user_version``.

A migration is appended, never edited: a trader's file at version N must reach the current
version by running N+1.. in turn. A file with a version above ``CURRENT_VERSION`` was written
by a newer terminal and is refused rather than guessed at.
"""

from __future__ import annotations

from services.storage.errors import SchemaTooNewError
from services.storage.sqlcipher import Connection

_V1 = """
CREATE TABLE instruments (
    exchange TEXT NOT NULL,
    tradingsymbol TEXT NOT NULL,
    token INTEGER NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    tick_size TEXT NOT NULL,
    lot_size INTEGER NOT NULL,
    expiry TEXT,
    strike TEXT,
    underlying TEXT,
    freeze_quantity INTEGER,
    PRIMARY KEY (exchange, tradingsymbol)
);
CREATE TABLE ticks (
    key TEXT NOT NULL,
    ts_ns INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    last_price TEXT NOT NULL,
    last_quantity INTEGER NOT NULL,
    volume INTEGER NOT NULL,
    open TEXT NOT NULL,
    high TEXT NOT NULL,
    low TEXT NOT NULL,
    close TEXT NOT NULL,
    depth TEXT,
    PRIMARY KEY (key, ts_ns, seq)
) WITHOUT ROWID;
CREATE TABLE bars (
    key TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    open TEXT NOT NULL,
    high TEXT NOT NULL,
    low TEXT NOT NULL,
    close TEXT NOT NULL,
    volume INTEGER NOT NULL,
    closed INTEGER NOT NULL,
    PRIMARY KEY (key, timeframe, start_ns)
) WITHOUT ROWID;
CREATE TABLE orders (
    order_id TEXT PRIMARY KEY,
    key TEXT NOT NULL,
    side TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    order_type TEXT NOT NULL,
    product TEXT NOT NULL,
    validity TEXT NOT NULL,
    price TEXT,
    trigger_price TEXT,
    tag TEXT,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    placed_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    filled_quantity INTEGER NOT NULL,
    average_price TEXT NOT NULL,
    status_message TEXT NOT NULL
);
CREATE TABLE fills (
    fill_id TEXT PRIMARY KEY,
    order_id TEXT NOT NULL,
    key TEXT NOT NULL,
    side TEXT NOT NULL,
    product TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    price TEXT NOT NULL,
    ts TEXT NOT NULL
);
CREATE INDEX fills_by_order ON fills (order_id);
CREATE TABLE positions (
    key TEXT NOT NULL,
    product TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    average_price TEXT NOT NULL,
    realised_pnl TEXT NOT NULL,
    last_price TEXT NOT NULL,
    buy_quantity INTEGER NOT NULL,
    sell_quantity INTEGER NOT NULL,
    multiplier INTEGER NOT NULL,
    PRIMARY KEY (key, product)
);
CREATE TABLE alerts (
    alert_id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    condition TEXT NOT NULL,
    threshold TEXT NOT NULL,
    created_at TEXT NOT NULL,
    triggered_at TEXT,
    active INTEGER NOT NULL,
    note TEXT NOT NULL
);
CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE credential_meta (
    broker TEXT PRIMARY KEY,
    field_names TEXT NOT NULL,
    set_at TEXT NOT NULL
);
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY,
    ts TEXT NOT NULL,
    kind TEXT NOT NULL,
    actor TEXT NOT NULL,
    details TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only'); END;
"""

# v2: the broker's own order id (reconciliation after a restart) and the ML registry's
# placeholder table.
_V2 = """
ALTER TABLE orders ADD COLUMN broker_order_id TEXT;
CREATE INDEX orders_by_broker_id ON orders (broker_order_id);
CREATE TABLE model_records (
    model_id TEXT NOT NULL,
    version TEXT NOT NULL,
    stage TEXT NOT NULL,
    created_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (model_id, version)
);
"""

# v3: the model registry's tables (the DDL of models/sqlstore.py, copied as text because
# services must not import models; tests/storage/test_migrations_v3.py keeps the two equal)
# and the headless API's keys (services/apikeys/store.py). IF NOT EXISTS: profiles used by
# `dalal model` or `dalal apikey` before v3 already have the tables their stores created.
_V3 = """
DROP TABLE model_records;
CREATE TABLE IF NOT EXISTS ml_models (
        model_id TEXT NOT NULL, version INTEGER NOT NULL, model_type TEXT NOT NULL,
        symbol TEXT NOT NULL, timeframe TEXT NOT NULL, horizon INTEGER NOT NULL,
        data_start TEXT NOT NULL, data_end TEXT NOT NULL, feature_names TEXT NOT NULL,
        feature_hash TEXT NOT NULL, metrics TEXT NOT NULL, artifact_name TEXT NOT NULL,
        artifact_size INTEGER NOT NULL, artifact_sha256 TEXT NOT NULL,
        artifact_signature TEXT NOT NULL, stage TEXT NOT NULL, created_at TEXT NOT NULL,
        created_by TEXT NOT NULL, stage_changed_at TEXT NOT NULL,
        stage_changed_by TEXT NOT NULL, reference TEXT NOT NULL,
        PRIMARY KEY (model_id, version)
);
CREATE TABLE IF NOT EXISTS ml_stage_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, model_id TEXT NOT NULL, version INTEGER NOT NULL,
        from_stage TEXT, to_stage TEXT NOT NULL, actor TEXT NOT NULL, at TEXT NOT NULL,
        reason TEXT NOT NULL, previous_production INTEGER
);
CREATE TABLE IF NOT EXISTS ml_ab_tests (
        test_id TEXT PRIMARY KEY, model_id TEXT NOT NULL, champion INTEGER NOT NULL,
        challenger INTEGER NOT NULL, split REAL NOT NULL, shadow INTEGER NOT NULL,
        min_samples INTEGER NOT NULL, max_samples INTEGER NOT NULL, alpha REAL NOT NULL,
        tau REAL NOT NULL, salt TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
        created_by TEXT NOT NULL, concluded_at TEXT, verdict TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS ml_ab_predictions (
        test_id TEXT NOT NULL, arm TEXT NOT NULL, symbol TEXT NOT NULL, bar_start TEXT NOT NULL,
        prob_up REAL NOT NULL, traded INTEGER NOT NULL, outcome INTEGER,
        PRIMARY KEY (test_id, arm, symbol, bar_start)
);
CREATE TABLE IF NOT EXISTS ml_onnx_artifacts (
        model_id TEXT NOT NULL, version INTEGER NOT NULL, artifact_name TEXT NOT NULL,
        artifact_size INTEGER NOT NULL, artifact_sha256 TEXT NOT NULL,
        artifact_signature TEXT NOT NULL, max_abs_diff REAL NOT NULL, rows_checked INTEGER NOT NULL,
        versions TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (model_id, version)
);
CREATE TRIGGER IF NOT EXISTS ml_stage_events_no_update BEFORE UPDATE ON ml_stage_events
BEGIN SELECT RAISE(ABORT, 'stage events are append-only'); END;
CREATE TRIGGER IF NOT EXISTS ml_stage_events_no_delete BEFORE DELETE ON ml_stage_events
BEGIN SELECT RAISE(ABORT, 'stage events are append-only'); END;
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    last_used_at TEXT
);
"""

# v4: a restart reads the day's orders and fills by time (Recorder.session).
_V4 = """
CREATE INDEX orders_by_placed_at ON orders (placed_at);
CREATE INDEX fills_by_ts ON fills (ts);
"""

# history store (services/marketdata/store.py): fetched candles, unadjusted, with where they
# came from and when; and per (instrument, interval, day) how many bars were stored against
# how many the session should have, so a fetch resumes and a gap is found without a scan.
_HISTORY = """
CREATE TABLE history_bars (
    key TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    start_ns INTEGER NOT NULL,
    open TEXT NOT NULL,
    high TEXT NOT NULL,
    low TEXT NOT NULL,
    close TEXT NOT NULL,
    volume INTEGER NOT NULL,
    provider TEXT NOT NULL,
    fetched_ns INTEGER NOT NULL,
    PRIMARY KEY (key, timeframe, start_ns)
) WITHOUT ROWID;
CREATE TABLE history_days (
    key TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    day TEXT NOT NULL,
    bars INTEGER NOT NULL,
    expected INTEGER NOT NULL,
    provider TEXT NOT NULL,
    fetched_ns INTEGER NOT NULL,
    PRIMARY KEY (key, timeframe, day)
) WITHOUT ROWID;
"""

# order counts: orders sent per broker per IST day, so a restart keeps the daily throttle count
# (services.brokers.throttle).
_ORDER_COUNTS = """
CREATE TABLE order_counts (
    broker TEXT NOT NULL,
    day TEXT NOT NULL,
    sent INTEGER NOT NULL,
    PRIMARY KEY (broker, day)
);
"""

# v7 (first run without an OS keyring): the vault's secrets (broker credentials and tokens,
# the model-signing key) when no trusted keyring exists; never exported. And the price at
# which an alert fired, so a triggered alert reloads with it.
_VAULT_SECRETS = """
CREATE TABLE vault_secrets (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    set_at TEXT NOT NULL
);
ALTER TABLE alerts ADD COLUMN triggered_price TEXT;
"""

# Backtest runs kept in the profile (services/backtest/store.py): the figures and the
# equity curve and trades as JSON, so a run can be compared and exported later.
_BACKTESTS = """
CREATE TABLE backtests (
    run_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    strategy TEXT NOT NULL,
    params TEXT NOT NULL,
    symbols TEXT NOT NULL,
    timeframe TEXT NOT NULL,
    first_day TEXT NOT NULL,
    last_day TEXT NOT NULL,
    source TEXT NOT NULL,
    stats TEXT NOT NULL,
    equity TEXT NOT NULL,
    trades TEXT NOT NULL
);
CREATE INDEX backtests_created ON backtests(created_at);
"""

# The order node (services/node/idempotency.py): one row per Idempotency-Key of a key id.
# ``response`` is empty while the order's outcome is not known (sent, no answer yet).
_IDEMPOTENCY = """
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    idem_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    tag TEXT NOT NULL,
    status INTEGER,
    response TEXT,
    created_ns INTEGER NOT NULL,
    PRIMARY KEY (scope, idem_key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_ns);
"""

# v10: recorded ticks in a compact log. The v1 table keyed every row by (instrument text,
# time, seq) WITHOUT ROWID, so each insert placed a ~300-byte row inside the B-tree at
# 3,000 different points per batch: about 14 us a tick of SQLCipher work at 50,000 ticks/s.
# Here a row is appended in arrival order (the rowid is the arrival order that ``seq`` was)
# with an integer instrument id, and only a small (instrument, time) index is kept for the
# readers: half the cost. Open interest is now kept too. The old rows are copied in their
# order, and ``ticks`` becomes a view with the old columns (plus oi), so an export still
# carries a ``ticks.csv`` with the instrument's name on every row.
_TICK_LOG = """
CREATE TABLE tick_keys (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL UNIQUE
);
CREATE TABLE tick_log (
    instrument INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    last_price TEXT NOT NULL,
    last_quantity INTEGER NOT NULL,
    volume INTEGER NOT NULL,
    open TEXT NOT NULL,
    high TEXT NOT NULL,
    low TEXT NOT NULL,
    close TEXT NOT NULL,
    oi INTEGER NOT NULL,
    oi_close INTEGER NOT NULL,
    depth TEXT
);
INSERT INTO tick_keys (key) SELECT DISTINCT key FROM ticks ORDER BY key;
INSERT INTO tick_log
    SELECT k.id, t.ts_ns, t.last_price, t.last_quantity, t.volume, t.open, t.high, t.low,
           t.close, 0, 0, t.depth
    FROM ticks t JOIN tick_keys k ON k.key = t.key ORDER BY t.key, t.ts_ns, t.seq;
DROP TABLE ticks;
CREATE INDEX tick_log_by_instrument ON tick_log (instrument, ts_ns);
CREATE VIEW ticks AS
    SELECT k.key AS key, l.ts_ns AS ts_ns, l.rowid AS seq, l.last_price AS last_price,
           l.last_quantity AS last_quantity, l.volume AS volume, l.open AS open,
           l.high AS high, l.low AS low, l.close AS close, l.depth AS depth, l.oi AS oi,
           l.oi_close AS oi_close
    FROM tick_log l JOIN tick_keys k ON k.id = l.instrument;
"""

# v11: the terminal's own GTTs (paper, and venues without broker-held GTTs) survive a
# restart. A GTT changes a handful of times in its life, so it is kept whole, as the JSON of
# ``services.gtt`` (its legs carry whole order requests), keyed by the book's id.
_GTTS = """
CREATE TABLE gtts (
    gtt_id INTEGER PRIMARY KEY,
    record TEXT NOT NULL
);
"""

# v12: a recorded tick is one JSON text, ``[last, last_qty, volume, open, high, low, close,
# oi, oi_close, depth]`` with every price a string (exact decimal text, as before) and depth
# ``{"b":[[price,qty,orders],...],"a":[...]}`` or null. Binding twelve parameters a row was
# a third of the recorder's insert time, and the recorder builds the text in one formatting
# step per tick (services/storage/codec.py). SQLite's json_array of the v10 columns gives
# exactly that text, so the old rows are converted here in their order, and ``ticks`` stays
# a view with the old columns for the export.
_TICK_ROWS = """
CREATE TABLE tick_rows (
    instrument INTEGER NOT NULL,
    ts_ns INTEGER NOT NULL,
    data TEXT NOT NULL
);
INSERT INTO tick_rows (instrument, ts_ns, data)
    SELECT instrument, ts_ns, json_array(last_price, last_quantity, volume, open, high, low,
                                         close, oi, oi_close, json(depth))
    FROM tick_log ORDER BY rowid;
DROP VIEW ticks;
DROP TABLE tick_log;
CREATE INDEX tick_rows_by_instrument ON tick_rows (instrument, ts_ns);
CREATE VIEW ticks AS
    SELECT k.key AS key, r.ts_ns AS ts_ns, r.rowid AS seq,
           r.data ->> '$[0]' AS last_price, r.data ->> '$[1]' AS last_quantity,
           r.data ->> '$[2]' AS volume, r.data ->> '$[3]' AS open, r.data ->> '$[4]' AS high,
           r.data ->> '$[5]' AS low, r.data ->> '$[6]' AS close, r.data ->> '$[9]' AS depth,
           r.data ->> '$[7]' AS oi, r.data ->> '$[8]' AS oi_close
    FROM tick_rows r JOIN tick_keys k ON k.id = r.instrument;
"""

MIGRATIONS: tuple[str, ...] = (
    _V1, _V2, _V3, _V4, _HISTORY, _ORDER_COUNTS, _VAULT_SECRETS, _BACKTESTS, _IDEMPOTENCY,
    _TICK_LOG, _GTTS, _TICK_ROWS,
)
CURRENT_VERSION = len(MIGRATIONS)


def schema_version(conn: Connection) -> int:
    row = conn.execute("PRAGMA user_version").fetchone()
    return int(row[0]) if row else 0


def migrate(conn: Connection, target: int = CURRENT_VERSION) -> int:
    """Bring the schema to ``target``; each step commits with its version bump atomically."""
    found = schema_version(conn)
    if found > CURRENT_VERSION:
        raise SchemaTooNewError(found, CURRENT_VERSION)
    for version in range(found + 1, target + 1):
        script = MIGRATIONS[version - 1]
        # executescript commits any open transaction first, so wrap the step ourselves.
        try:
            conn.executescript(
                f"BEGIN IMMEDIATE;\n{script}\nPRAGMA user_version = {version};\nCOMMIT;"
            )
        except Exception:
            conn.execute("ROLLBACK")
            raise
    return schema_version(conn)
