-- Nothing to do: the SQLite migration of this version rebuilds SQLite's
-- search table. Both backends keep the same migration versions.
SELECT 1;
