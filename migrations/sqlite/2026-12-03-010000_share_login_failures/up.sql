-- Nothing to do: a SQLite database serves one instance, which counts failed
-- logins in memory. Both backends keep the same migration versions.
SELECT 1;
