package limits

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/apperr"
)

// A patch keeps numbers and nulls, turns "default" into an unset, and names
// the field of every mistake.
func TestParsePatch(t *testing.T) {
	p, err := ParsePatch(json.RawMessage(`{"requests_per_second":2.5,"burst":10,"storage_bytes":null,"training_rows":"default"}`))
	require.NoError(t, err)
	require.JSONEq(t, `{"requests_per_second":2.5,"burst":10,"storage_bytes":null}`, string(p.Set))
	require.Equal(t, []string{"training_rows"}, p.Unset)

	for body, field := range map[string]string{
		`{"burst":0}`: "limits.burst", `{"burst":2.5}`: "limits.burst", `{"questions_per_day":-1}`: "limits.questions_per_day",
		`{"requests_per_second":0}`: "limits.requests_per_second", `{"rows_per_import":"many"}`: "limits.rows_per_import",
		`{"x":1}`: "limits.x", `[1]`: "limits", `null`: "limits", `{"storage_bytes":1e300}`: "limits.storage_bytes",
	} {
		_, err := ParsePatch(json.RawMessage(body))
		e := apperr.As(err)
		require.Equal(t, apperr.Invalid, e.Code, body)
		require.Equal(t, field, e.Details["field"], body)
	}
}

// Absent takes the default, null is unlimited, a number is the limit.
func TestEffective(t *testing.T) {
	five, seven := 5.0, 7.0
	s := New(nil, Limits{QuestionsPerDay: &five, Burst: &seven})
	got, err := s.Effective([]byte(`{"burst":null,"storage_bytes":100}`))
	require.NoError(t, err)
	require.Len(t, got, len(Names))
	require.Equal(t, 5.0, *got[QuestionsPerDay])
	require.Nil(t, got[Burst])
	require.Equal(t, 100.0, *got[StorageBytes])
	require.Nil(t, got[RequestsPerSecond])
}

// Defaults from the environment: unset or "unlimited" is unlimited, a bad
// value names its variable.
func TestFromEnv(t *testing.T) {
	env := map[string]string{"DBCHAT_DEFAULT_REQUESTS_PER_SECOND": "20", "DBCHAT_DEFAULT_BURST": "unlimited", "DBCHAT_DEFAULT_TRAINING_ROWS": " 1000 "}
	got, err := FromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	require.Equal(t, 20.0, *got[RequestsPerSecond])
	require.Equal(t, 1000.0, *got[TrainingRows])
	require.NotContains(t, got, Burst)
	env["DBCHAT_DEFAULT_ROWS_PER_IMPORT"] = "-3"
	_, err = FromEnv(func(k string) string { return env[k] })
	require.ErrorContains(t, err, "DBCHAT_DEFAULT_ROWS_PER_IMPORT")
}
