// The Postgres adapter arrives with its own issue; this entry point exists so the package layout is final.
export {};
