-- 5-minute rollup of gpu_samples per (cluster, gpu_model, node), filled on insert by a
-- materialized view. Long-range Fleet-health panels read it instead of the raw samples.
--
-- SummingMergeTree of plain sums and sample counts: an average is sum(x_sum) / sum(x_samples)
-- over any grouping at or above this grain and any time bucket that is a multiple of 5
-- minutes, and it stays exact whether or not parts have merged (readers need no FINAL).
-- Null readings (NVML NOT_SUPPORTED) add nothing to a metric's sum or its sample count, as
-- avg() on the raw table ignores them too.
--
-- Retention follows the derived tables (ttl_derived_days), not the raw ones: the rollup is
-- ~40x smaller than the samples (8 GPUs x 5 samples per row at a 60 s period) and outliving
-- the raw rows is what lets the dashboards draw ranges longer than raw retention.
--
-- Re-sent segments: the view runs even for a block that gpu_samples drops as a duplicate, so
-- the rollup has its own deduplication window. The shipper inserts every segment with
-- insert_deduplication_token = segment id; the view's block inherits a token derived from it,
-- so a re-sent segment is dropped here too, and distinct segments never collide. Duplicates
-- that only ReplacingMergeTree collapses later (the same sample in two different segments, or
-- an identical block re-inserted without a token) are counted twice here: the averages of a
-- fully duplicated window do not move, its sample counts do.

CREATE TABLE IF NOT EXISTS gpu_samples_5m {{on_cluster}}
(
    window_start             DateTime64(3, 'UTC') CODEC(DoubleDelta, ZSTD(1)),
    cluster                  LowCardinality(String),
    gpu_model                LowCardinality(String),
    node                     LowCardinality(String),
    samples                  UInt64,
    sm_util_pct_sum          Float64,
    sm_util_pct_samples      UInt64,
    gr_engine_active_sum     Float64,
    gr_engine_active_samples UInt64,
    mem_util_pct_sum         Float64,
    mem_util_pct_samples     UInt64,
    power_w_sum              Float64,
    power_w_samples          UInt64,
    temperature_c_sum        Float64,
    temperature_c_samples    UInt64
)
ENGINE = SummingMergeTree
PARTITION BY toDate(window_start)
ORDER BY (cluster, gpu_model, node, window_start)
{{ttl_derived:window_start}}
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS gpu_samples_5m_mv {{on_cluster}} TO gpu_samples_5m AS
SELECT
    toDateTime64(toStartOfInterval(ts, INTERVAL 5 MINUTE), 3, 'UTC') AS window_start,
    cluster,
    gpu_model,
    node,
    count() AS samples,
    sum(ifNull(toFloat64(sm_util_pct), 0)) AS sm_util_pct_sum,
    count(sm_util_pct) AS sm_util_pct_samples,
    sum(ifNull(toFloat64(gr_engine_active), 0)) AS gr_engine_active_sum,
    count(gr_engine_active) AS gr_engine_active_samples,
    sum(ifNull(toFloat64(mem_util_pct), 0)) AS mem_util_pct_sum,
    count(mem_util_pct) AS mem_util_pct_samples,
    sum(ifNull(power_w, 0)) AS power_w_sum,
    count(power_w) AS power_w_samples,
    sum(ifNull(toFloat64(temperature_c), 0)) AS temperature_c_sum,
    count(temperature_c) AS temperature_c_samples
FROM gpu_samples
GROUP BY window_start, cluster, gpu_model, node;
