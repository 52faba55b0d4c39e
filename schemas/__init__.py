"""The data contract: Arrow schemas of every table, ClickHouse migrations, and the Store.

``schemas`` imports nothing of fleetledger's; every other package may import it. Collectors and
pipelines share only what is defined here (record schemas, the spool format, the Store).
"""

from schemas.dsn import InvalidDSNError, StoreDSN, chdb_dsn, parse_dsn
from schemas.store import Store, StoreBusyError, StoreError, StoreQueryError, StoreUnavailableError
from schemas.tables import DERIVED_TABLES, RAW_TABLES, ROLLUP_TABLES, TABLES, conform, empty_table, schema_for

__all__ = [
    "DERIVED_TABLES", "RAW_TABLES", "ROLLUP_TABLES", "TABLES", "InvalidDSNError", "Store", "StoreBusyError", "StoreDSN",
    "StoreError", "StoreQueryError", "StoreUnavailableError", "chdb_dsn", "conform", "empty_table",
    "parse_dsn", "schema_for",
]
