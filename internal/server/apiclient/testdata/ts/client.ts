// A tiny client over the types openapi-typescript generates from
// internal/server/openapi.yaml into schema.gen.ts (not committed). `make
// verify` regenerates them and type-checks this file, so a document change
// that breaks such a client, or makes an optional request field required,
// fails there.
import type { components, operations, paths } from "./schema.gen";

type Schemas = components["schemas"];
type JSONBody<Op extends keyof operations> = operations[Op] extends {
  requestBody?: { content: { "application/json": infer B } };
}
  ? B
  : never;
type JSONResponse<Op extends keyof operations, Status extends number> =
  operations[Op]["responses"] extends Record<Status, { content: { "application/json": infer R } }> ? R : never;

// path is one of the document's paths (those without parameters here).
async function call<R>(base: string, key: string, method: string, path: keyof paths, body?: unknown): Promise<R> {
  const resp = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  if (!resp.ok) {
    const err = (await resp.json()) as Schemas["Error"];
    throw new Error(`${err.error.code}: ${err.error.message}`);
  }
  return (await resp.json()) as R;
}

// Optional request fields may be left out: the server's defaults apply.
export const customers: JSONBody<"createTable"> = {
  name: "customers",
  columns: [
    { name: "id", type: "bigint", nullable: false },
    { name: "name", type: "text" },
    { name: "signed_up", type: "date", description: "First order" },
  ],
};
export const count: Schemas["SQLRequest"] = { sql: "SELECT count(*) FROM customers" };
export const question: JSONBody<"askQuestion"> = { question: "How many customers do we have?" };

// @ts-expect-error sql is required
export const noSQL: Schemas["SQLRequest"] = { limit: 10 };
// @ts-expect-error the column type is an enum
export const badType: Schemas["ColumnCreate"] = { name: "x", type: "varchar" };

export async function createTable(base: string, key: string): Promise<Schemas["Table"]> {
  const t = await call<JSONResponse<"createTable", 201>>(base, key, "POST", "/v1/tables", customers);
  const names: string[] = t.columns.map((c) => c.name);
  const nullable: boolean | undefined = t.columns[0]?.is_nullable;
  void names, nullable;
  return t;
}

export async function tableNames(base: string, key: string): Promise<string[]> {
  const res = await call<JSONResponse<"listTables", 200>>(base, key, "GET", "/v1/tables");
  return res.tables.map((t) => t.name);
}

export async function runSQL(base: string, key: string, req: Schemas["SQLRequest"]): Promise<Schemas["Row"][]> {
  const res = await call<JSONResponse<"runSQL", 200>>(base, key, "POST", "/v1/sql", req);
  const columns: string[] = res.columns.map((c) => `${c.name} ${c.type}`);
  const truncated: boolean = res.truncated;
  const historyID: string = res.history_id;
  // @ts-expect-error the result is typed: no such field
  const nothing = res.no_such_field;
  void columns, truncated, historyID, nothing;
  return res.rows;
}

export async function ask(base: string, key: string): Promise<string> {
  const a = await call<JSONResponse<"askQuestion", 200>>(base, key, "POST", "/v1/ask", question);
  const rows: Schemas["Row"][] = a.rows;
  void rows;
  return a.sql;
}
