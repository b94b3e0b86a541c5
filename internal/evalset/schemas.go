package evalset

import "github.com/dbchat/dbchat/internal/catalog"

// Schemas are the evaluation schemas. Neither appears in the generator's
// code; their words (departments, salary, mileage, …) are the tenant's.
var Schemas = []Schema{HR, Fleet}

func col(name, typ, desc string) catalog.ColumnSpec {
	return catalog.ColumnSpec{Name: name, Type: typ, Description: desc}
}

// HR is a small company: departments, employees and projects.
var HR = Schema{
	Name: "hr",
	Tables: []catalog.TableSpec{
		{Name: "departments", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("name", "text", ""),
			col("budget", "numeric", "Yearly budget in EUR"), col("location", "text", "City of the office")}},
		{Name: "employees", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("name", "text", ""),
			col("department", "text", ""), col("salary", "numeric", "Yearly gross pay in EUR"),
			col("hired_on", "date", ""), col("remote", "boolean", "Works from home")}},
		{Name: "projects", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("name", "text", ""),
			col("status", "text", ""), col("started_on", "date", ""), col("budget", "numeric", ""), col("department", "text", "")}},
	},
	Rows: `
INSERT INTO departments (id, name, budget, location) VALUES
  (1, 'Engineering', 500000, 'Berlin'), (2, 'Sales', 150000, 'Paris'), (3, 'Support', 90000, 'Berlin');
INSERT INTO employees (id, name, department, salary, hired_on, remote) VALUES
  (1, 'Alice', 'Engineering', 95000, '2018-04-01', true), (2, 'Bob', 'Engineering', 72000, '2021-03-15', false),
  (3, 'Carol', 'Sales', 58000, '2019-07-01', NULL), (4, 'Dan', 'Sales', 61000, '2021-03-02', true),
  (5, 'Erin', NULL, 45000, '2022-01-10', false), (6, 'Frank', 'Support', 52000, '2017-11-20', false),
  (7, 'Grace', 'Engineering', 105000, '2023-06-01', true), (8, 'Heidi', NULL, 67000, '2019-02-14', true),
  (9, 'Ivan', 'Support', 48000, '2023-05-20', false);
INSERT INTO projects (id, name, status, started_on, budget, department) VALUES
  (1, 'Apollo', 'active', '2024-01-10', 120000, 'Engineering'), (2, 'Borealis', 'paused', '2023-09-01', 40000, 'Sales'),
  (3, 'Cygnus', 'active', '2024-04-02', 80000, 'Engineering'), (4, 'Draco', 'done', '2022-05-15', 30000, 'Support'),
  (5, 'Eos', 'active', '2024-03-01', 15000, 'Sales'), (6, 'Fornax', 'done', '2021-11-30', 60000, 'Engineering')`,
	Cases: []Case{
		{"How many employees are there?", `SELECT count(*) FROM employees`},
		{"Which department has the most employees?", `SELECT department, count(*) FROM employees GROUP BY department ORDER BY 2 DESC, 1 LIMIT 1`},
		{"How many employees do not have a department?", `SELECT count(*) FROM employees WHERE department IS NULL`},
		{"How many employees earn more than 60000 and were hired before 2020?", `SELECT count(*) FROM employees WHERE salary > 60000 AND hired_on < '2020-01-01'`},
		{"Which employees are not remote?", `SELECT * FROM employees WHERE remote IS NOT TRUE ORDER BY id`},
		{"List the projects with status active", `SELECT * FROM projects WHERE status = 'active' ORDER BY id`},
		{"List the projects started after 2024-03-01", `SELECT * FROM projects WHERE started_on > '2024-03-01' ORDER BY id`},
		{"What is the average salary per department?", `SELECT department, avg(salary) FROM employees GROUP BY department ORDER BY 2 DESC, 1`},
		{"Who is the newest employee?", `SELECT * FROM employees ORDER BY hired_on DESC LIMIT 1`},
		{"How many remote employees are in Engineering?", `SELECT count(*) FROM employees WHERE remote AND department = 'Engineering'`},
		{"What is the total salary of employees in Sales?", `SELECT sum(salary) FROM employees WHERE department = 'Sales'`},
		{"List employees hired in March 2021", `SELECT * FROM employees WHERE hired_on >= '2021-03-01' AND hired_on < '2021-04-01' ORDER BY id`},
		{"Which employee has the highest salary?", `SELECT * FROM employees ORDER BY salary DESC LIMIT 1`},
		{"How many projects are active or paused?", `SELECT count(*) FROM projects WHERE status IN ('active', 'paused')`},
		{"How many employees were hired in the last 90 days?", `SELECT count(*) FROM employees WHERE hired_on > (SELECT max(hired_on) FROM employees) - 90`},
		{"What is the lowest salary?", `SELECT min(salary) FROM employees`},
		{"Show the 3 oldest projects", `SELECT * FROM projects ORDER BY started_on LIMIT 3`},
		{"How many employees are not in Engineering?", `SELECT count(*) FROM employees WHERE department IS DISTINCT FROM 'Engineering'`},
		{"List departments with a budget over 100000", `SELECT * FROM departments WHERE budget > 100000 ORDER BY id`},
		{"Which location has the most departments?", `SELECT location, count(*) FROM departments GROUP BY location ORDER BY 2 DESC, 1 LIMIT 1`},
		{"What is the total budget of active projects?", `SELECT sum(budget) FROM projects WHERE status = 'active'`},
		{"How many employees were hired since 2021?", `SELECT count(*) FROM employees WHERE hired_on >= '2021-01-01'`},
		{"Average salary of remote employees", `SELECT avg(salary) FROM employees WHERE remote`},
		{"List the names of employees in Support", `SELECT name FROM employees WHERE department = 'Support' ORDER BY id`},
		{"Which department has the highest total salary?", `SELECT department, sum(salary) FROM employees GROUP BY department ORDER BY 2 DESC, 1 LIMIT 1`},
		{"How many employees work from home?", `SELECT count(*) FROM employees WHERE remote`},
		{"How many employees were hired per year?", `SELECT date_trunc('year', hired_on), count(*) FROM employees GROUP BY 1 ORDER BY 1`},
		// Unanswerable here: the generator must say so.
		{"What is the favourite colour of each employee?", ""},
		{"Which employees have the most projects?", ""},
		{"How happy are employees?", ""},
		{"Who is the CEO?", ""},
		{"List the newest employees in the Marketing department", ""},
		{"How many employees are managers?", ""},
		{"What will the salary budget be next year?", ""},
		{"Which employees earn more than their manager?", ""},
	},
}

// Fleet is a car-sharing fleet: vehicles and trips.
var Fleet = Schema{
	Name: "fleet",
	Tables: []catalog.TableSpec{
		{Name: "vehicles", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("plate", "text", "Licence plate"),
			col("make", "text", "Manufacturer"), col("model", "text", ""), col("year", "integer", "Model year"),
			col("mileage", "integer", "Odometer reading in km"), col("electric", "boolean", ""), col("purchased_on", "date", "")}},
		{Name: "trips", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("vehicle_id", "bigint", "vehicles.id"),
			col("driver", "text", ""), col("distance_km", "numeric", "Distance driven in kilometres"),
			col("started_at", "timestamptz", ""), col("city", "text", "")}},
	},
	Rows: `
INSERT INTO vehicles (id, plate, make, model, year, mileage, electric, purchased_on) VALUES
  (1, 'B-AB-1', 'Toyota', 'Corolla', 2018, 82000, false, '2018-05-02'), (2, 'B-CD-2', 'Tesla', 'Model 3', 2021, 31000, true, '2021-02-11'),
  (3, 'P-EF-3', 'Renault', 'Zoe', 2020, 45000, true, '2020-09-30'), (4, 'P-GH-4', 'Toyota', 'Yaris', 2016, 120000, false, '2016-03-14'),
  (5, NULL, 'Tesla', 'Model Y', 2023, 9000, true, '2023-07-01');
INSERT INTO trips (id, vehicle_id, driver, distance_km, started_at, city) VALUES
  (1, 1, 'Ana', 12.5, '2025-01-03 08:00+00', 'Berlin'), (2, 2, 'Bo', 40, '2025-01-04 09:30+00', 'Berlin'),
  (3, 2, 'Ana', 7.25, '2025-01-10 17:00+00', 'Paris'), (4, 3, 'Cem', 22, '2025-02-01 07:45+00', 'Paris'),
  (5, 4, 'Bo', 5, '2025-02-03 12:00+00', 'Berlin'), (6, 5, 'Ana', 60, '2025-02-05 18:20+00', 'Lyon'),
  (7, 1, 'Cem', 18, '2025-02-06 06:10+00', 'Berlin')`,
	Cases: []Case{
		{"How many vehicles are electric?", `SELECT count(*) FROM vehicles WHERE electric`},
		{"List vehicles with mileage under 50000", `SELECT * FROM vehicles WHERE mileage < 50000 ORDER BY id`},
		{"What is the average mileage of electric vehicles?", `SELECT avg(mileage) FROM vehicles WHERE electric`},
		{"How many trips per city?", `SELECT city, count(*) FROM trips GROUP BY city ORDER BY 2 DESC, 1`},
		{"Which city has the most trips?", `SELECT city, count(*) FROM trips GROUP BY city ORDER BY 2 DESC, 1 LIMIT 1`},
		{"What is the total distance of trips in Berlin?", `SELECT sum(distance_km) FROM trips WHERE city = 'Berlin'`},
		{"List trips by driver 'Ana'", `SELECT * FROM trips WHERE driver = 'Ana' ORDER BY id`},
		{"Which vehicles are not electric?", `SELECT * FROM vehicles WHERE electric IS NOT TRUE ORDER BY id`},
		{"How many vehicles were purchased before 2020?", `SELECT count(*) FROM vehicles WHERE purchased_on < '2020-01-01'`},
		{"What is the highest mileage?", `SELECT max(mileage) FROM vehicles`},
		{"How many trips started in the last 7 days?", `SELECT count(*) FROM trips WHERE started_at > (SELECT max(started_at) FROM trips) - interval '7 days'`},
		{"List Toyota vehicles", `SELECT * FROM vehicles WHERE make = 'Toyota' ORDER BY id`},
		{"What is the average distance per driver?", `SELECT driver, avg(distance_km) FROM trips GROUP BY driver ORDER BY 2 DESC, 1`},
		{"Show the 5 most recent trips", `SELECT * FROM trips ORDER BY started_at DESC LIMIT 5`},
		{"Which make has the highest average mileage?", `SELECT make, avg(mileage) FROM vehicles GROUP BY make ORDER BY 2 DESC, 1 LIMIT 1`},
		{"How many vehicles have a mileage between 30000 and 50000?", `SELECT count(*) FROM vehicles WHERE mileage BETWEEN 30000 AND 50000`},
		{"Which vehicles have no plate?", `SELECT * FROM vehicles WHERE plate IS NULL ORDER BY id`},
		{"Show the plates of electric vehicles", `SELECT plate FROM vehicles WHERE electric ORDER BY id`},
		{"Total distance per vehicle", `SELECT vehicle_id, sum(distance_km) FROM trips GROUP BY vehicle_id ORDER BY 2 DESC, 1`},
		{"How many trips in Paris were by Ana?", `SELECT count(*) FROM trips WHERE city = 'Paris' AND driver = 'Ana'`},
		{"What is the average distance of trips in February 2025?", `SELECT avg(distance_km) FROM trips WHERE started_at >= '2025-02-01' AND started_at < '2025-03-01'`},
		{"How many Tesla vehicles are there?", `SELECT count(*) FROM vehicles WHERE make = 'Tesla'`},
		{"List the trips in Berlin or Lyon", `SELECT * FROM trips WHERE city IN ('Berlin', 'Lyon') ORDER BY id`},
		{"Which vehicle has the lowest mileage?", `SELECT * FROM vehicles ORDER BY mileage LIMIT 1`},
		{"What is the total distance per day in February 2025?", `SELECT date_trunc('day', started_at), sum(distance_km) FROM trips WHERE started_at >= '2025-02-01' AND started_at < '2025-03-01' GROUP BY 1 ORDER BY 1`},
		// Unanswerable here.
		{"Which driver is the safest?", ""},
		{"How much fuel did the vehicles use?", ""},
		{"What is the weather in Berlin?", ""},
		{"List trips of vehicles older than 10 years", ""},
		{"Which vehicles need service?", ""},
		{"How many trips did Zoe take?", ""},
		{"What is the most popular colour?", ""},
	},
}
