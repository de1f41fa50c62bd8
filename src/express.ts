// The Express integration arrives with the HTTP API issue; this entry point exists so the layout is final.
export {};
