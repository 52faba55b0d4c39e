-- Derived tables written by the flows. Each row carries the run_version of the run that
-- wrote it; re-running a window writes a higher version and ReplacingMergeTree keeps only the
-- newest row per key (readers use FINAL or argMax on run_version).

CREATE TABLE IF NOT EXISTS request_costs {{on_cluster}}
(
    window_start        DateTime64(3, 'UTC'),
    cluster             LowCardinality(String),
    engine_instance     LowCardinality(String),
    model               LowCardinality(String),
    request_id          String CODEC(ZSTD(1)),
    trace_id            String CODEC(ZSTD(1)),
    span_id             String CODEC(ZSTD(1)),
    workflow            LowCardinality(String),
    tenant              LowCardinality(String),
    route               LowCardinality(String),
    reasoning_mode      LowCardinality(String),
    request_class       LowCardinality(String),
    start_ts            DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    end_ts              DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    prompt_tokens       UInt32,
    cached_tokens       UInt32,
    completion_tokens   UInt32,
    prefill_gpu_seconds Float64 CODEC(Gorilla, ZSTD(1)),
    decode_gpu_seconds  Float64 CODEC(Gorilla, ZSTD(1)),
    gpu_seconds         Float64 CODEC(Gorilla, ZSTD(1)),
    energy_j            Float64 CODEC(Gorilla, ZSTD(1)),
    energy_source       LowCardinality(String),
    cost_usd            Float64 CODEC(Gorilla, ZSTD(1)),
    energy_cost_usd     Float64 CODEC(Gorilla, ZSTD(1)),
    weighting           LowCardinality(String),
    run_version         UInt64,
    computed_at         DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(run_version)
PARTITION BY toDate(window_start)
ORDER BY (window_start, cluster, engine_instance, span_id)
{{ttl_derived:window_start}};

CREATE TABLE IF NOT EXISTS workflow_costs_hourly {{on_cluster}}
(
    hour                DateTime64(3, 'UTC'),
    cluster             LowCardinality(String),
    model               LowCardinality(String),
    workflow            LowCardinality(String),
    tenant              LowCardinality(String),
    route               LowCardinality(String),
    reasoning_mode      LowCardinality(String),
    requests            UInt64,
    prompt_tokens       UInt64,
    cached_tokens       UInt64,
    completion_tokens   UInt64,
    prefill_gpu_seconds Float64,
    decode_gpu_seconds  Float64,
    gpu_seconds         Float64,
    energy_kwh          Float64,
    cost_usd            Float64,
    energy_cost_usd     Float64,
    usd_per_1m_tokens   Float64,
    run_version         UInt64,
    computed_at         DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(run_version)
PARTITION BY toDate(hour)
ORDER BY (hour, cluster, model, workflow, tenant, route, reasoning_mode)
{{ttl_derived:hour}};

CREATE TABLE IF NOT EXISTS idle_costs_hourly {{on_cluster}}
(
    hour              DateTime64(3, 'UTC'),
    cluster           LowCardinality(String),
    reservation_id    LowCardinality(String),
    owner_team        LowCardinality(String),
    pricing_model     LowCardinality(String),
    node              LowCardinality(String),
    gpu_uuid          LowCardinality(String),
    gpu_model         LowCardinality(String),
    reserved_seconds  Float64,
    busy_seconds      Float64,
    idle_seconds      Float64,
    idle_energy_j     Float64,
    reserved_cost_usd Float64,
    idle_cost_usd     Float64,
    run_version       UInt64,
    computed_at       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(run_version)
PARTITION BY toDate(hour)
ORDER BY (hour, cluster, reservation_id, gpu_uuid)
{{ttl_derived:hour}};

CREATE TABLE IF NOT EXISTS expert_hotness {{on_cluster}}
(
    window_start      DateTime64(3, 'UTC'),
    window_end        DateTime64(3, 'UTC'),
    cluster           LowCardinality(String),
    engine_instance   LowCardinality(String),
    model             LowCardinality(String),
    layer             UInt16,
    total_tokens      UInt64,
    balancedness      Float64,
    max_vio           Float64,
    hot_experts       Array(UInt32),
    hot_shares        Array(Float64),
    hot_drift         Float64,
    imbalance_tax_usd Float64,
    run_version       UInt64,
    computed_at       DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(run_version)
PARTITION BY toDate(window_start)
ORDER BY (model, engine_instance, cluster, window_start, layer)
{{ttl_derived:window_start}};

CREATE TABLE IF NOT EXISTS attribution_runs {{on_cluster}}
(
    run_version         UInt64,
    window_start        DateTime64(3, 'UTC'),
    window_end          DateTime64(3, 'UTC'),
    cluster             LowCardinality(String),
    requests            UInt64,
    total_cost_usd      Float64,
    attributed_cost_usd Float64,
    idle_cost_usd       Float64,
    total_energy_j      Float64,
    attributed_energy_j Float64,
    idle_energy_j       Float64,
    conservation_ok     Bool,
    status              LowCardinality(String),
    computed_at         DateTime64(3, 'UTC')
)
ENGINE = ReplacingMergeTree(run_version)
ORDER BY (window_start, cluster, run_version);
