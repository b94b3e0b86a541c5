package bench

import (
	"strings"
	"testing"
)

func TestReplicaSectionRenders(t *testing.T) {
	e := &Env{cfg: Config{Runs: 2, HTTP: HTTPConfig{Duration: 3e9, Warmup: 1e9}}}
	p := &replicaTarget{name: "primary", runs: []loadResult{{RPS: 100, P50us: 2000, P99us: 9000}, {RPS: 110, P50us: 2100, P99us: 9500}}}
	s := &replicaTarget{name: "standby", runs: []loadResult{{RPS: 90, P50us: 2200, P99us: 9900}, {RPS: 99, P50us: 2300, P99us: 9900}}}
	sec := replicaSection(e, []*replicaTarget{p, s}, 12, 0)
	for _, want := range []string{"| primary | 105 (100–110) | 2.05 (2.00–2.10) | 9.25 (9.00–9.50) |", "Standby / primary: 0.90 (0.90–0.90)",
		"12 statements ran on the standby and 0 on the primary"} {
		if !strings.Contains(sec.Body, want) {
			t.Errorf("lacks %q:\n%s", want, sec.Body)
		}
	}
	if strings.Contains(sec.Body, "(template ") || len(sec.Summary) != 1 || sec.Summary[0].Ratio != "0.90 (0.90–0.90)" {
		t.Fatalf("%+v\n%s", sec.Summary, sec.Body)
	}
}
