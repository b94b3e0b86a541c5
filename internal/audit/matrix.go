package audit

import (
	"fmt"
	"time"
)

// ProbeResult is what the live isolation self-test (package audit/probe)
// did and saw.
type ProbeResult struct {
	StartedAt  time.Time     `json:"started_at"`
	FinishedAt time.Time     `json:"finished_at"`
	Tenants    []ProbeTenant `json:"tenants"`
	Attempts   []Attempt     `json:"attempts"`
	// Unavailable lists paths the probe could not exercise, with the matrix
	// cells they would have backed (e.g. /v1/ask before it exists).
	Unavailable []Unavailable `json:"unavailable"`
	Cleanup     Cleanup       `json:"cleanup"`
}

// ProbeTenant is one of the throwaway tenants.
type ProbeTenant struct {
	Label  string `json:"label"` // "A" or "B"
	ID     string `json:"id"`
	Schema string `json:"schema"`
	Marker string `json:"marker"` // in every row the tenant wrote
}

// Attempt is one thing the probe tried and what happened.
type Attempt struct {
	ID int `json:"id"`
	// Channel is how: "sql as dbchat_app", "sql as dbchat_query", "http",
	// "sandbox", "ask", "integrity".
	Channel string `json:"channel"`
	Actor   string `json:"actor"`  // tenant label acting
	Victim  string `json:"victim"` // tenant label whose data is targeted (the actor's own for controls)
	// Action: read, update, delete, move (rewrite own rows into the victim),
	// create, escalate, or control (the actor on its own data, which must work).
	Action    string   `json:"action"`
	Target    string   `json:"target"`
	Statement string   `json:"statement"`
	Expected  string   `json:"expected"`
	Outcome   string   `json:"outcome"`
	Passed    bool     `json:"passed"`
	Control   bool     `json:"control"`
	Cells     []string `json:"cells,omitempty"`
}

// Unavailable is a path the probe could not exercise.
type Unavailable struct {
	What   string   `json:"what"`
	Reason string   `json:"reason"`
	Cells  []string `json:"cells"`
}

// Cleanup reports the removal of everything the probe created.
type Cleanup struct {
	Done    bool     `json:"done"`
	Removed []string `json:"removed"`
	Residue []string `json:"residue"`
	Error   string   `json:"error,omitempty"`
}

// The access-control matrix's cells (the seed's matrix: operations × same
// tenant / other tenant, plus training data and query history isolation).
const (
	CellViewSame    = "view_tables/same_tenant"
	CellViewOther   = "view_tables/other_tenant"
	CellCreateSame  = "create_tables/same_tenant"
	CellCreateOther = "create_tables/other_tenant"
	CellGenSame     = "sql_generation/same_tenant"
	CellGenOther    = "sql_generation/other_tenant"
	CellExecSame    = "query_execution/same_tenant"
	CellExecOther   = "query_execution/other_tenant"
	CellTraining    = "training_data/isolated"
	CellHistory     = "query_history/isolated"
)

// Cell statuses.
const (
	StatusVerified     = "verified"
	StatusFailed       = "failed"
	StatusNotProbed    = "not probed"
	StatusNotAvailable = "not available"
)

// MatrixRow is one operation of the access-control matrix.
type MatrixRow struct {
	Operation string       `json:"operation"`
	Cells     []MatrixCell `json:"cells"`
}

// MatrixCell is one claim of the matrix and the probe attempts behind it.
type MatrixCell struct {
	Key      string `json:"key"`
	Column   string `json:"column"`   // "same tenant", "other tenant" or "isolated"
	Expected string `json:"expected"` // "allowed", "denied" or "isolated"
	Status   string `json:"status"`   // verified, failed, not probed, not available
	Attempts []int  `json:"attempts"` // ids of the attempts backing it
	Failed   []int  `json:"failed"`   // ids of those that did not go as expected
	Note     string `json:"note"`
}

var matrixLayout = []struct {
	operation string
	cells     []MatrixCell
}{
	{"View tables", []MatrixCell{{Key: CellViewSame, Column: "same tenant", Expected: "allowed"}, {Key: CellViewOther, Column: "other tenant", Expected: "denied"}}},
	{"Create tables", []MatrixCell{{Key: CellCreateSame, Column: "same tenant", Expected: "allowed"}, {Key: CellCreateOther, Column: "other tenant", Expected: "denied"}}},
	{"SQL generation", []MatrixCell{{Key: CellGenSame, Column: "same tenant", Expected: "allowed"}, {Key: CellGenOther, Column: "other tenant", Expected: "denied"}}},
	{"Query execution", []MatrixCell{{Key: CellExecSame, Column: "same tenant", Expected: "allowed"}, {Key: CellExecOther, Column: "other tenant", Expected: "denied"}}},
	{"Training data", []MatrixCell{{Key: CellTraining, Column: "isolated", Expected: "isolated"}}},
	{"Query history", []MatrixCell{{Key: CellHistory, Column: "isolated", Expected: "isolated"}}},
}

// buildMatrix backs every cell with probe attempts; without a probe every
// cell says "not probed".
func buildMatrix(p *ProbeResult) []MatrixRow {
	rows := make([]MatrixRow, 0, len(matrixLayout))
	for _, l := range matrixLayout {
		row := MatrixRow{Operation: l.operation}
		for _, c := range l.cells {
			c.Attempts, c.Failed = []int{}, []int{}
			switch {
			case p == nil:
				c.Status = StatusNotProbed
				c.Note = "run `dbchat audit --probe` to back this cell with attempts"
			default:
				for _, a := range p.Attempts {
					for _, k := range a.Cells {
						if k != c.Key {
							continue
						}
						c.Attempts = append(c.Attempts, a.ID)
						if !a.Passed {
							c.Failed = append(c.Failed, a.ID)
						}
					}
				}
				switch {
				case len(c.Failed) > 0:
					c.Status = StatusFailed
					c.Note = fmt.Sprintf("%d of %d attempts did not go as expected", len(c.Failed), len(c.Attempts))
				case len(c.Attempts) > 0:
					c.Status = StatusVerified
					c.Note = fmt.Sprintf("%d attempts, all as expected", len(c.Attempts))
				default:
					c.Status = StatusNotAvailable
					c.Note = "no probe attempt covers this cell"
					for _, u := range p.Unavailable {
						for _, k := range u.Cells {
							if k == c.Key {
								c.Note = u.What + ": " + u.Reason
							}
						}
					}
				}
			}
			row.Cells = append(row.Cells, c)
		}
		rows = append(rows, row)
	}
	return rows
}
