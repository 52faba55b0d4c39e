-- Read-only access for dashboards (Grafana) and FinOps tools. NOT applied by `fleetledger init`:
-- an administrator runs it once on the ClickHouse server (clickhouse-client --multiquery < this
-- file), after replacing the password, database name and cluster clause. The embedded (chDB)
-- store has no users; use `fleetledger sql` (read-only) there instead.
--
-- readonly = 2 lets clients set query settings (the Grafana plugin sets max_execution_time)
-- while still refusing every write and DDL; the profile caps what one query may cost.

CREATE SETTINGS PROFILE IF NOT EXISTS fleetledger_readonly_profile
    SETTINGS readonly = 2,
             max_execution_time = 60 CHANGEABLE_IN_READONLY,
             max_memory_usage = 8000000000,
             max_result_rows = 1000000,
             result_overflow_mode = 'throw';

CREATE ROLE IF NOT EXISTS fleetledger_reader;

-- cost tables, FinOps views (0003_finops_views), the raw tables and the gpu_samples_5m rollup
-- (0004) the health dashboard reads
GRANT SELECT ON default.workflow_costs_hourly TO fleetledger_reader;
GRANT SELECT ON default.idle_costs_hourly TO fleetledger_reader;
GRANT SELECT ON default.request_costs TO fleetledger_reader;
GRANT SELECT ON default.expert_hotness TO fleetledger_reader;
GRANT SELECT ON default.attribution_runs TO fleetledger_reader;
GRANT SELECT ON default.workflow_costs_daily_v TO fleetledger_reader;
GRANT SELECT ON default.idle_reservations_v TO fleetledger_reader;
GRANT SELECT ON default.reservation_utilisation_v TO fleetledger_reader;
GRANT SELECT ON default.hot_experts_v TO fleetledger_reader;
GRANT SELECT ON default.unit_economics_v TO fleetledger_reader;
GRANT SELECT ON default.focus_costs_v TO fleetledger_reader;
GRANT SELECT ON default.reservations TO fleetledger_reader;
GRANT SELECT ON default.prices TO fleetledger_reader;
GRANT SELECT ON default.engine_placements TO fleetledger_reader;
GRANT SELECT ON default.gpu_samples TO fleetledger_reader;
GRANT SELECT ON default.gpu_samples_5m TO fleetledger_reader;
GRANT SELECT ON default.gpu_events TO fleetledger_reader;
GRANT SELECT ON default.expert_loads TO fleetledger_reader;
GRANT SELECT ON default.expert_balance_samples TO fleetledger_reader;

-- the user Grafana's data source provisioning (dashboards/grafana/datasource.yaml) logs in as
CREATE USER IF NOT EXISTS fleetledger_grafana
    IDENTIFIED WITH sha256_password BY 'CHANGE-ME'
    DEFAULT ROLE fleetledger_reader
    SETTINGS PROFILE 'fleetledger_readonly_profile';
GRANT fleetledger_reader TO fleetledger_grafana;
