-- FinOps example queries over the views of migration 0003 (run them with `fleetledger sql`,
-- or from any ClickHouse client as the read-only user of readonly_role.sql). Parameters use
-- ClickHouse's {name:Type} form: `fleetledger sql "$(cat q.sql)" -p from=2026-11-01 -p to=2026-12-01`.

-- 1. Cost by workflow per day, most expensive first
SELECT day, workflow, round(sum(cost_usd), 2) AS cost_usd, sum(requests) AS requests
FROM workflow_costs_daily_v
WHERE day >= {from:Date} AND day < {to:Date}
GROUP BY day, workflow
ORDER BY day, cost_usd DESC;

-- 2. Idle reservations: who pays for GPUs that serve nothing
SELECT reservation_id, owner_team, pricing_model,
       round(sum(idle_cost_usd), 2) AS idle_usd,
       round(100 * sum(idle_cost_usd) / sum(reserved_cost_usd), 1) AS idle_pct
FROM idle_reservations_v
WHERE day >= {from:Date} AND day < {to:Date}
GROUP BY reservation_id, owner_team, pricing_model
ORDER BY idle_usd DESC;

-- 3. Hot experts: experts most often in a layer's top-k, with their mean share
SELECT model, layer, expert, count() AS windows_hot, round(avg(share), 4) AS mean_share
FROM hot_experts_v
WHERE window_start >= {from:DateTime64(3)} AND window_start < {to:DateTime64(3)}
GROUP BY model, layer, expert
ORDER BY windows_hot DESC, mean_share DESC
LIMIT 20;

-- 4. Unit economics: $ per 1M tokens and GPU-seconds per 1k tokens by model and workflow
SELECT model, workflow,
       round(sum(cost_usd) / sum(tokens) * 1e6, 4) AS usd_per_1m_tokens,
       round(sum(gpu_seconds) / sum(tokens) * 1e3, 4) AS gpu_seconds_per_1k_tokens,
       round(sum(energy_kwh) * 3.6e6 / sum(tokens), 4) AS joules_per_token
FROM unit_economics_v
WHERE day >= {from:Date} AND day < {to:Date} AND tokens > 0
GROUP BY model, workflow
ORDER BY usd_per_1m_tokens DESC;

-- 5. Reservation utilisation per day
SELECT toDate(hour) AS day, reservation_id,
       round(100 * sum(busy_gpu_hours) / sum(reserved_gpu_hours), 1) AS utilisation_pct
FROM reservation_utilisation_v
WHERE hour >= {from:DateTime64(3)} AND hour < {to:DateTime64(3)}
GROUP BY day, reservation_id
ORDER BY day, reservation_id;

-- 6. FOCUS: amortised cost by commitment status, and the invoice (BilledCost)
SELECT x_ReservationId, CommitmentDiscountStatus, ChargeCategory,
       round(sum(EffectiveCost), 2) AS effective_cost, round(sum(BilledCost), 2) AS billed_cost
FROM focus_costs_v
WHERE ChargePeriodStart >= {from:DateTime64(3)} AND ChargePeriodStart < {to:DateTime64(3)}
GROUP BY x_ReservationId, CommitmentDiscountStatus, ChargeCategory
ORDER BY x_ReservationId, ChargeCategory, CommitmentDiscountStatus;
