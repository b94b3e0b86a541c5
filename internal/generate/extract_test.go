package generate_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/dbchat/dbchat/internal/generate"
)

func TestExtractSQL(t *testing.T) {
	t.Parallel()
	for reply, want := range map[string]string{
		"SELECT 1;": "SELECT 1",
		"Here is the query:\n```sql\nSELECT count(*) FROM customers;\n```\nIt counts rows.": "SELECT count(*) FROM customers",
		"```\nWITH x AS (SELECT 1) SELECT * FROM x\n```":                                    "WITH x AS (SELECT 1) SELECT * FROM x",
		"Sure! SELECT name FROM customers WHERE country = 'US'":                             "SELECT name FROM customers WHERE country = 'US'",
		"I cannot answer that.": "I cannot answer that.",
	} {
		require.Equal(t, want, generate.ExtractSQL(reply), reply)
	}
}
