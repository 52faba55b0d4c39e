-- Raw tables written by the collectors (through the spool) and by `reservations/prices load`.
-- ReplacingMergeTree keyed on each row's natural identity: a segment shipped twice after a
-- crash collapses to one row; insert deduplication tokens catch it earlier still.

CREATE TABLE IF NOT EXISTS gpu_samples {{on_cluster}}
(
    ts                 DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    cluster            LowCardinality(String),
    node               LowCardinality(String),
    gpu_uuid           LowCardinality(String),
    gpu_index          UInt16,
    gpu_model          LowCardinality(String),
    mig_profile        LowCardinality(String),
    mig_instance       LowCardinality(String),
    sm_util_pct        Nullable(Float32) CODEC(ZSTD(1)),
    gr_engine_active   Nullable(Float32) CODEC(ZSTD(1)),
    mem_util_pct       Nullable(Float32) CODEC(ZSTD(1)),
    memory_used_bytes  Nullable(UInt64) CODEC(Delta, ZSTD(1)),
    memory_total_bytes Nullable(UInt64) CODEC(ZSTD(1)),
    power_w            Nullable(Float64) CODEC(Gorilla, ZSTD(1)),
    energy_mj          Nullable(UInt64) CODEC(Delta, ZSTD(1)),
    sm_clock_mhz       Nullable(UInt32) CODEC(ZSTD(1)),
    mem_clock_mhz      Nullable(UInt32) CODEC(ZSTD(1)),
    temperature_c      Nullable(Float32) CODEC(ZSTD(1)),
    throttle_reasons   Nullable(UInt64) CODEC(ZSTD(1)),
    ecc_sbe_total      Nullable(UInt64) CODEC(Delta, ZSTD(1)),
    ecc_dbe_total      Nullable(UInt64) CODEC(Delta, ZSTD(1)),
    source             LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (cluster, node, gpu_uuid, mig_instance, source, ts)
{{ttl_raw:ts}}
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS gpu_events {{on_cluster}}
(
    ts          DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    cluster     LowCardinality(String),
    node        LowCardinality(String),
    gpu_uuid    LowCardinality(String),
    gpu_index   Nullable(UInt16),
    event_kind  LowCardinality(String),
    xid         Nullable(UInt32),
    detail      String CODEC(ZSTD(3)),
    source      LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (cluster, node, gpu_uuid, event_kind, ts, detail)
{{ttl_raw:ts}}
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS gpu_processes {{on_cluster}}
(
    ts                DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    cluster           LowCardinality(String),
    node              LowCardinality(String),
    gpu_uuid          LowCardinality(String),
    pid               UInt32,
    process_name      LowCardinality(String),
    container_id      String CODEC(ZSTD(1)),
    pod               LowCardinality(String),
    namespace         LowCardinality(String),
    container         LowCardinality(String),
    used_memory_bytes Nullable(UInt64) CODEC(Delta, ZSTD(1)),
    sm_util_pct       Nullable(Float32) CODEC(ZSTD(1)),
    source            LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (cluster, node, gpu_uuid, pid, ts)
{{ttl_raw:ts}}
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS engine_placements {{on_cluster}}
(
    cluster         LowCardinality(String),
    engine_instance LowCardinality(String),
    node            LowCardinality(String),
    gpu_uuids       Array(String),
    engine_kind     LowCardinality(String),
    model           LowCardinality(String),
    tp              UInt16,
    pp              UInt16,
    ep              UInt16,
    dp              UInt16,
    valid_from      DateTime64(3, 'UTC'),
    valid_to        DateTime64(3, 'UTC'),
    source          LowCardinality(String),
    updated_at      DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(updated_at)
ORDER BY (cluster, engine_instance, valid_from)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS request_spans {{on_cluster}}
(
    trace_id          String CODEC(ZSTD(1)),
    span_id           String CODEC(ZSTD(1)),
    parent_span_id    String CODEC(ZSTD(1)),
    request_id        String CODEC(ZSTD(1)),
    engine_kind       LowCardinality(String),
    engine_instance   LowCardinality(String),
    cluster           LowCardinality(String),
    node              LowCardinality(String),
    model             LowCardinality(String),
    start_ts          DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    end_ts            DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    queue_seconds     Float64 CODEC(Gorilla, ZSTD(1)),
    ttft_seconds      Float64 CODEC(Gorilla, ZSTD(1)),
    prefill_seconds   Float64 CODEC(Gorilla, ZSTD(1)),
    decode_seconds    Float64 CODEC(Gorilla, ZSTD(1)),
    inference_seconds Float64 CODEC(Gorilla, ZSTD(1)),
    e2e_seconds       Float64 CODEC(Gorilla, ZSTD(1)),
    prompt_tokens     UInt32 CODEC(ZSTD(1)),
    cached_tokens     UInt32 CODEC(ZSTD(1)),
    completion_tokens UInt32 CODEC(ZSTD(1)),
    max_tokens        Nullable(UInt32),
    finish_reason     LowCardinality(String),
    workflow          LowCardinality(String),
    tenant            LowCardinality(String),
    route             LowCardinality(String),
    reasoning_mode    LowCardinality(String),
    request_class     LowCardinality(String),
    attributes        Map(LowCardinality(String), String) CODEC(ZSTD(3)),
    received_at       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toDate(start_ts)
ORDER BY (cluster, engine_instance, start_ts, span_id)
{{ttl_raw:start_ts}}
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS trace_labels {{on_cluster}}
(
    trace_id       String CODEC(ZSTD(1)),
    span_id        String CODEC(ZSTD(1)),
    ts             DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    workflow       LowCardinality(String),
    tenant         LowCardinality(String),
    route          LowCardinality(String),
    reasoning_mode LowCardinality(String),
    request_class  LowCardinality(String),
    received_at    DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(received_at)
PARTITION BY toDate(ts)
ORDER BY (trace_id, span_id)
{{ttl_raw:ts}}
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS engine_metrics {{on_cluster}}
(
    ts              DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    cluster         LowCardinality(String),
    node            LowCardinality(String),
    engine_kind     LowCardinality(String),
    engine_instance LowCardinality(String),
    metric          LowCardinality(String),
    labels          Map(LowCardinality(String), String) CODEC(ZSTD(3)),
    labels_key      String CODEC(ZSTD(3)),
    value           Float64 CODEC(Gorilla, ZSTD(1))
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (cluster, engine_instance, metric, labels_key, ts)
{{ttl_raw:ts}}
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS expert_loads {{on_cluster}}
(
    window_start    DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    window_end      DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    cluster         LowCardinality(String),
    engine_instance LowCardinality(String),
    model           LowCardinality(String),
    layer           UInt16,
    expert          UInt32,
    tokens          UInt64 CODEC(ZSTD(1)),
    source          LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(window_start)
ORDER BY (model, engine_instance, cluster, source, window_start, layer, expert)
{{ttl_raw:window_start}}
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS expert_balance_samples {{on_cluster}}
(
    ts              DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    cluster         LowCardinality(String),
    engine_instance LowCardinality(String),
    model           LowCardinality(String),
    layer           Int32,
    avg_tokens      Nullable(Float64),
    max_tokens      Nullable(Float64),
    balancedness    Float64,
    source          LowCardinality(String)
)
ENGINE = ReplacingMergeTree
PARTITION BY toDate(ts)
ORDER BY (model, engine_instance, cluster, source, layer, ts)
{{ttl_raw:ts}}
SETTINGS non_replicated_deduplication_window = 1000;

CREATE TABLE IF NOT EXISTS reservations {{on_cluster}}
(
    reservation_id   String,
    provider         LowCardinality(String),
    pricing_model    LowCardinality(String),
    gpu_model        LowCardinality(String),
    cluster          LowCardinality(String),
    nodes            Array(String),
    gpu_uuids        Array(String),
    gpu_count        UInt32,
    usd_per_gpu_hour Float64,
    owner_team       LowCardinality(String),
    valid_from       DateTime64(3, 'UTC'),
    valid_to         DateTime64(3, 'UTC'),
    loaded_at        DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (reservation_id, valid_from);

CREATE TABLE IF NOT EXISTS prices {{on_cluster}}
(
    price_id      String,
    kind          LowCardinality(String),
    provider      LowCardinality(String),
    pricing_model LowCardinality(String),
    gpu_model     LowCardinality(String),
    region        LowCardinality(String),
    cluster       LowCardinality(String),
    usd_per_unit  Float64,
    unit          LowCardinality(String),
    valid_from    DateTime64(3, 'UTC'),
    valid_to      DateTime64(3, 'UTC'),
    loaded_at     DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(loaded_at)
ORDER BY (price_id, valid_from);

CREATE TABLE IF NOT EXISTS spool_segments {{on_cluster}}
(
    segment_id  String,
    table_name  LowCardinality(String),
    node        LowCardinality(String),
    rows        UInt64,
    ingested_at DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(ingested_at)
ORDER BY (segment_id)
{{ttl_raw:ingested_at}};
