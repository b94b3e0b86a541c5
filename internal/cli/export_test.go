package cli

// ProbeAPI is the API `dbchat audit --probe` attacks, for the probe's tests.
var ProbeAPI = probeAPI
