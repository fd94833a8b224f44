/** A timestamp column as ISO-8601 UTC. Drivers differ in what they parse (PGlite and pg, dates): accept either form. */
export const isoTime = (v: unknown) => (v instanceof Date ? v : new Date(String(v))).toISOString();
