-- FinOps views over the derived cost tables (owned by dashboards/; documented with example
-- queries in dashboards/README.md). Views only, no tables. Derived tables are
-- ReplacingMergeTree on run_version, so every view reads them with FINAL: a re-run window
-- replaces its older rows and the views never double count.

-- Cost by workflow per day (ratio columns are ratios of sums, never averages of ratios).
CREATE VIEW IF NOT EXISTS workflow_costs_daily_v {{on_cluster}} AS
SELECT
    toDate(hour) AS day,
    cluster, model, workflow, tenant,
    sum(requests) AS requests,
    sum(prompt_tokens) AS prompt_tokens,
    sum(cached_tokens) AS cached_tokens,
    sum(completion_tokens) AS completion_tokens,
    sum(gpu_seconds) AS gpu_seconds,
    sum(energy_kwh) AS energy_kwh,
    sum(cost_usd) AS cost_usd,
    sum(energy_cost_usd) AS energy_cost_usd
FROM workflow_costs_hourly FINAL
GROUP BY day, cluster, model, workflow, tenant;

-- Idle reservations per day: what each reservation paid for GPUs that served nothing.
CREATE VIEW IF NOT EXISTS idle_reservations_v {{on_cluster}} AS
SELECT
    toDate(hour) AS day,
    cluster, reservation_id, owner_team, pricing_model, gpu_model,
    uniqExact(gpu_uuid) AS gpus,
    sum(reserved_seconds) / 3600 AS reserved_gpu_hours,
    sum(idle_seconds) / 3600 AS idle_gpu_hours,
    sum(idle_energy_j) AS idle_energy_j,
    sum(reserved_cost_usd) AS reserved_cost_usd,
    sum(idle_cost_usd) AS idle_cost_usd,
    if(reserved_cost_usd > 0, idle_cost_usd / reserved_cost_usd, 0) AS idle_cost_share
FROM idle_costs_hourly FINAL
GROUP BY day, cluster, reservation_id, owner_team, pricing_model, gpu_model;

-- Reservation utilisation per hour: busy GPU-hours over reserved GPU-hours.
CREATE VIEW IF NOT EXISTS reservation_utilisation_v {{on_cluster}} AS
SELECT
    hour, cluster, reservation_id, owner_team, pricing_model, gpu_model,
    uniqExact(gpu_uuid) AS gpus,
    sum(reserved_seconds) / 3600 AS reserved_gpu_hours,
    sum(busy_seconds) / 3600 AS busy_gpu_hours,
    if(reserved_gpu_hours > 0, busy_gpu_hours / reserved_gpu_hours, 0) AS utilisation,
    sum(reserved_cost_usd) AS reserved_cost_usd,
    sum(idle_cost_usd) AS idle_cost_usd
FROM idle_costs_hourly FINAL
GROUP BY hour, cluster, reservation_id, owner_team, pricing_model, gpu_model;

-- Hot experts: one row per (window, instance, layer, hot expert), hottest first (rank 1).
CREATE VIEW IF NOT EXISTS hot_experts_v {{on_cluster}} AS
SELECT
    window_start, window_end, cluster, engine_instance, model, layer,
    rank, expert, share,
    total_tokens, balancedness, max_vio, hot_drift, imbalance_tax_usd
FROM expert_hotness FINAL
ARRAY JOIN hot_experts AS expert, hot_shares AS share, arrayEnumerate(hot_experts) AS rank;

-- Unit economics per day, model and workflow: $ per 1M tokens (prompt + completion),
-- GPU-seconds per 1k tokens, joules per token, $ per request, cached-token share.
CREATE VIEW IF NOT EXISTS unit_economics_v {{on_cluster}} AS
SELECT
    toDate(hour) AS day,
    cluster, model, workflow,
    sum(requests) AS requests,
    sum(prompt_tokens) + sum(completion_tokens) AS tokens,
    sum(cost_usd) AS cost_usd,
    sum(gpu_seconds) AS gpu_seconds,
    sum(energy_kwh) AS energy_kwh,
    if(tokens > 0, cost_usd / tokens * 1e6, 0) AS usd_per_1m_tokens,
    if(tokens > 0, gpu_seconds / tokens * 1e3, 0) AS gpu_seconds_per_1k_tokens,
    if(tokens > 0, energy_kwh * 3.6e6 / tokens, 0) AS joules_per_token,
    if(requests > 0, cost_usd / requests, 0) AS usd_per_request,
    if(sum(prompt_tokens) > 0, sum(cached_tokens) / sum(prompt_tokens), 0) AS cached_token_share
FROM workflow_costs_hourly FINAL
GROUP BY day, cluster, model, workflow;

-- FOCUS 1.3 shaped cost rows (one charge period = one hour), built from idle_costs_hourly,
-- engine_placements, workflow_costs_hourly, reservations and prices.
--   reserved GPUs (a commitment): a recurring Purchase row per reservation-hour carries the
--     BilledCost (EffectiveCost 0); Usage rows carry the amortised EffectiveCost (BilledCost 0):
--     CommitmentDiscountStatus 'Used' rows for busy GPU time, split by workflow and tenant,
--     and 'Unused' rows for idle time (= idle_costs_hourly.idle_cost_usd).
--   on-demand / spot GPUs: Usage rows with BilledCost = EffectiveCost, busy time split the
--     same way and idle time as its own row tagged fleetledger.idle=true.
-- Split rows: the busy cost of a (reservation, node, model) hour is shared among the
-- (workflow, tenant) pairs of that model in that cluster-hour in proportion to their
-- attributed cost (AllocatedMethodId 'fleetledger.model_cost_share'); x_AllocatedRatio of
-- one x_OriginChargeId sums to 1. Busy time with no attributed cost for its model goes to
-- workflow 'unallocated' with ratio 1.
CREATE VIEW IF NOT EXISTS focus_costs_v {{on_cluster}} AS
WITH
    gpu_hours AS (
        SELECT
            i.hour AS hour, i.cluster AS cluster, i.reservation_id AS reservation_id, i.gpu_uuid AS gpu_uuid,
            any(i.owner_team) AS owner_team, any(i.pricing_model) AS pricing_model, any(i.node) AS node,
            any(i.gpu_model) AS gpu_model,
            any(i.reserved_seconds) AS reserved_seconds, any(i.idle_seconds) AS idle_seconds,
            any(i.reserved_cost_usd) AS reserved_cost_usd, any(i.idle_cost_usd) AS idle_cost_usd,
            argMaxIf(p.model, p.valid_from,
                     p.valid_from < i.hour + INTERVAL 1 HOUR AND p.valid_to > i.hour) AS model
        FROM (SELECT * FROM idle_costs_hourly FINAL) AS i
        LEFT JOIN (
            SELECT cluster, arrayJoin(gpu_uuids) AS gpu_uuid, model, valid_from, valid_to
            FROM engine_placements FINAL
        ) AS p ON p.cluster = i.cluster AND p.gpu_uuid = i.gpu_uuid
        GROUP BY hour, cluster, reservation_id, gpu_uuid
    ),
    charges AS (
        SELECT
            hour, cluster, reservation_id, node, model,
            any(owner_team) AS owner_team, any(pricing_model) AS pricing_model, any(gpu_model) AS gpu_model,
            sum(reserved_seconds) AS reserved_s, sum(idle_seconds) AS idle_s,
            sum(reserved_cost_usd) AS reserved_usd, sum(idle_cost_usd) AS idle_usd,
            if(reserved_s > 0, reserved_usd / reserved_s * 3600, 0) AS contracted_unit_price
        FROM gpu_hours
        GROUP BY hour, cluster, reservation_id, node, model
    ),
    list_prices AS (
        SELECT
            h.hour AS hour, h.cluster AS cluster, h.gpu_model AS gpu_model,
            argMaxIf(p.usd_per_unit, (p.cluster != '', p.valid_from),
                     h.hour >= p.valid_from AND h.hour < p.valid_to AND (p.cluster = '' OR p.cluster = h.cluster))
                AS list_unit_price
        FROM (SELECT DISTINCT hour, cluster, gpu_model FROM charges) AS h
        LEFT JOIN (
            SELECT gpu_model, cluster, valid_from, valid_to, usd_per_unit
            FROM prices FINAL
            WHERE kind = 'gpu' AND pricing_model = 'on_demand'
        ) AS p ON p.gpu_model = h.gpu_model
        GROUP BY hour, cluster, gpu_model
    ),
    providers AS (
        SELECT reservation_id, any(provider) AS provider FROM reservations FINAL GROUP BY reservation_id
    ),
    shares AS (
        SELECT
            hour, cluster, model, workflow, tenant, 1 AS matched,
            sum(cost_usd) AS wf_cost_usd,
            wf_cost_usd / sum(wf_cost_usd) OVER (PARTITION BY hour, cluster, model) AS ratio
        FROM workflow_costs_hourly FINAL
        WHERE cost_usd > 0
        GROUP BY hour, cluster, model, workflow, tenant
    ),
    priced AS (
        SELECT
            c.hour AS hour, c.cluster AS cluster, c.reservation_id AS reservation_id, c.node AS node,
            c.model AS model, c.owner_team AS owner_team, c.pricing_model AS pricing_model,
            c.gpu_model AS gpu_model, c.reserved_s AS reserved_s, c.idle_s AS idle_s,
            c.reserved_usd AS reserved_usd, c.idle_usd AS idle_usd, c.contracted_unit_price AS contracted_unit_price,
            if(lp.list_unit_price > 0, lp.list_unit_price, c.contracted_unit_price) AS list_unit_price,
            if(pr.provider = '', 'unknown', pr.provider) AS provider,
            lower(hex(cityHash64(c.reservation_id, c.node, c.model, c.hour))) AS origin_charge_id
        FROM charges AS c
        LEFT JOIN list_prices AS lp ON lp.hour = c.hour AND lp.cluster = c.cluster AND lp.gpu_model = c.gpu_model
        LEFT JOIN providers AS pr ON pr.reservation_id = c.reservation_id
    ),
    charge_rows AS (
        -- busy time, split by workflow and tenant
        SELECT
            p.hour AS hour, p.cluster AS cluster, p.reservation_id AS reservation_id, p.node AS node, p.model AS model, p.owner_team AS owner_team, p.pricing_model AS pricing_model, p.gpu_model AS gpu_model, p.contracted_unit_price AS contracted_unit_price, p.list_unit_price AS list_unit_price, p.provider AS provider, p.origin_charge_id AS origin_charge_id,
            'Usage' AS charge_category,
            if(p.pricing_model = 'reserved', 'Used', '') AS commitment_status,
            if(s.matched = 1, s.workflow, 'unallocated') AS workflow,
            if(s.matched = 1, s.tenant, '') AS tenant,
            if(s.matched = 1, s.ratio, 1.0) AS ratio,
            (p.reserved_s - p.idle_s) / 3600 * if(s.matched = 1, s.ratio, 1.0) AS gpu_hours,
            (p.reserved_usd - p.idle_usd) * if(s.matched = 1, s.ratio, 1.0) AS effective_usd,
            1 AS is_split
        FROM priced AS p
        LEFT JOIN shares AS s ON s.hour = p.hour AND s.cluster = p.cluster AND s.model = p.model
        WHERE p.reserved_s > p.idle_s OR p.reserved_usd > p.idle_usd
        UNION ALL
        -- idle time: Unused commitment, or idle on-demand / spot capacity
        SELECT
            p.hour AS hour, p.cluster AS cluster, p.reservation_id AS reservation_id, p.node AS node, p.model AS model, p.owner_team AS owner_team, p.pricing_model AS pricing_model, p.gpu_model AS gpu_model, p.contracted_unit_price AS contracted_unit_price, p.list_unit_price AS list_unit_price, p.provider AS provider, p.origin_charge_id AS origin_charge_id,
            'Usage' AS charge_category,
            if(p.pricing_model = 'reserved', 'Unused', '') AS commitment_status,
            '' AS workflow, '' AS tenant, 1.0 AS ratio,
            p.idle_s / 3600 AS gpu_hours, p.idle_usd AS effective_usd, 0 AS is_split
        FROM priced AS p
        WHERE p.idle_s > 0 OR p.idle_usd > 0
    )
SELECT * FROM (
SELECT
    toDateTime64(hour, 3, 'UTC') AS ChargePeriodStart,
    toDateTime64(hour + INTERVAL 1 HOUR, 3, 'UTC') AS ChargePeriodEnd,
    toDateTime64(toStartOfMonth(hour), 3, 'UTC') AS BillingPeriodStart,
    toDateTime64(toStartOfMonth(hour) + INTERVAL 1 MONTH, 3, 'UTC') AS BillingPeriodEnd,
    'USD' AS BillingCurrency,
    provider AS ProviderName, provider AS PublisherName, provider AS InvoiceIssuerName,
    charge_category AS ChargeCategory,
    'Usage-Based' AS ChargeFrequency,
    concat(gpu_model, ' GPU time, ', pricing_model, if(commitment_status = '', '', concat(', ', commitment_status)),
           if(workflow = '', '', concat(', workflow ', workflow))) AS ChargeDescription,
    if(pricing_model = 'reserved', 0.0, effective_usd) AS BilledCost,
    effective_usd AS EffectiveCost,
    list_unit_price * gpu_hours AS ListCost,
    contracted_unit_price * gpu_hours AS ContractedCost,
    list_unit_price AS ListUnitPrice,
    contracted_unit_price AS ContractedUnitPrice,
    multiIf(pricing_model = 'reserved', 'Committed', pricing_model = 'spot', 'Dynamic', 'Standard') AS PricingCategory,
    if(commitment_status = 'Unused', CAST(NULL, 'Nullable(Float64)'), toNullable(gpu_hours)) AS ConsumedQuantity,
    if(commitment_status = 'Unused', CAST(NULL, 'Nullable(String)'), toNullable('GPU-Hours')) AS ConsumedUnit,
    gpu_hours AS PricingQuantity,
    'GPU-Hours' AS PricingUnit,
    concat(cluster, '/', node) AS ResourceId,
    node AS ResourceName,
    'GPU Node' AS ResourceType,
    'GPU Compute' AS ServiceName,
    'AI and Machine Learning' AS ServiceCategory,
    concat(gpu_model, ':', pricing_model) AS SkuId,
    if(pricing_model = 'reserved', toNullable(reservation_id), CAST(NULL, 'Nullable(String)')) AS CommitmentDiscountId,
    if(pricing_model = 'reserved', toNullable('Usage'), CAST(NULL, 'Nullable(String)')) AS CommitmentDiscountType,
    if(commitment_status = '', CAST(NULL, 'Nullable(String)'), toNullable(commitment_status)) AS CommitmentDiscountStatus,
    if(pricing_model = 'reserved', toNullable(reservation_id), CAST(NULL, 'Nullable(String)')) AS CommitmentDiscountName,
    if(is_split = 1, toNullable('fleetledger.model_cost_share'), CAST(NULL, 'Nullable(String)')) AS AllocatedMethodId,
    if(is_split = 1,
       toNullable(concat('{"OriginChargeId":"', origin_charge_id, '","AllocatedRatio":', toString(ratio),
              ',"AllocationBasis":"workflow_costs_hourly.cost_usd share within (hour, cluster, model)"}')),
       CAST(NULL, 'Nullable(String)')) AS AllocatedMethodDetails,
    toJSONString(map(
        'fleetledger.cluster', cluster, 'fleetledger.reservation_id', reservation_id,
        'fleetledger.owner_team', owner_team, 'fleetledger.pricing_model', pricing_model,
        'fleetledger.gpu_model', gpu_model, 'fleetledger.model', model,
        'fleetledger.workflow', workflow, 'fleetledger.tenant', tenant,
        'fleetledger.idle', if(is_split = 1, 'false', 'true'))) AS Tags,
    cluster AS x_Cluster,
    reservation_id AS x_ReservationId,
    owner_team AS x_OwnerTeam,
    model AS x_Model,
    workflow AS x_Workflow,
    tenant AS x_Tenant,
    origin_charge_id AS x_OriginChargeId,
    ratio AS x_AllocatedRatio
FROM charge_rows
UNION ALL
-- the recurring purchase of each reserved commitment: what the invoice bills per hour
SELECT
    toDateTime64(hour, 3, 'UTC'), toDateTime64(hour + INTERVAL 1 HOUR, 3, 'UTC'),
    toDateTime64(toStartOfMonth(hour), 3, 'UTC'), toDateTime64(toStartOfMonth(hour) + INTERVAL 1 MONTH, 3, 'UTC'),
    'USD', provider, provider, provider,
    'Purchase', 'Recurring',
    concat(gpu_model, ' GPU reservation ', reservation_id, ', hourly commitment fee'),
    total_reserved_usd, 0.0, total_reserved_usd, total_reserved_usd, contracted_unit_price, contracted_unit_price,
    'Committed', CAST(NULL, 'Nullable(Float64)'), CAST(NULL, 'Nullable(String)'),
    total_reserved_s / 3600, 'GPU-Hours',
    CAST(NULL, 'Nullable(String)'), CAST(NULL, 'Nullable(String)'), CAST(NULL, 'Nullable(String)'),
    'GPU Compute', 'AI and Machine Learning', concat(gpu_model, ':reserved'),
    toNullable(reservation_id), toNullable('Usage'), CAST(NULL, 'Nullable(String)'), toNullable(reservation_id),
    CAST(NULL, 'Nullable(String)'), CAST(NULL, 'Nullable(String)'),
    toJSONString(map('fleetledger.cluster', cluster, 'fleetledger.reservation_id', reservation_id,
                     'fleetledger.owner_team', owner_team, 'fleetledger.pricing_model', 'reserved',
                     'fleetledger.gpu_model', gpu_model)),
    cluster, reservation_id, owner_team, '', '', '', '', 1.0
FROM (
    SELECT hour, cluster, reservation_id, any(owner_team) AS owner_team, any(gpu_model) AS gpu_model,
           any(provider) AS provider, sum(reserved_s) AS total_reserved_s, sum(reserved_usd) AS total_reserved_usd,
           if(total_reserved_s > 0, total_reserved_usd / total_reserved_s * 3600, 0) AS contracted_unit_price
    FROM priced
    WHERE pricing_model = 'reserved'
    GROUP BY hour, cluster, reservation_id
)
);
