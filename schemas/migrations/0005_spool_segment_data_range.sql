-- Each loaded spool segment records the time range of the data it carried, so the hourly flow
-- can re-attribute a window when GPU samples (or any raw rows) for it arrive late, not only spans.

ALTER TABLE spool_segments {{on_cluster}}
    ADD COLUMN IF NOT EXISTS data_start Nullable(DateTime64(3, 'UTC')),
    ADD COLUMN IF NOT EXISTS data_end Nullable(DateTime64(3, 'UTC'));
