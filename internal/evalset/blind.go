package evalset

import "github.com/dbchat/dbchat/internal/catalog"

// Blind are evaluation schemas from domains the generator had not seen
// (library lending, clinic appointments, a web shop's orders, shipments and
// returns), their questions written by someone who had not read the
// generator's code, the last few of each after reading it, aimed at what
// the first ones had caught. Relative dates ("last year") are anchored on
// the data, as in Schemas; a value that appears nowhere in the data
// ("Poetry", "FedEx") makes a question unanswerable, as "Marketing" does
// there. Unlike Schemas, which the offline generator answers in full, the
// bar here is only that no answer is wrong: a refusal is allowed.
var Blind = []Schema{Library, Clinic, Shop}

// Library is a city library: branches, members, books and loans.
var Library = Schema{
	Name: "library",
	Tables: []catalog.TableSpec{
		{Name: "branches", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("name", "text", ""), col("city", "text", ""), col("opened_on", "date", "")}},
		{Name: "members", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("name", "text", ""), col("city", "text", ""),
			col("joined_on", "date", ""), col("type", "text", "adult, child or senior"), col("branch_id", "bigint", "branches.id: home branch")}},
		{Name: "books", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("title", "text", ""), col("author", "text", ""),
			col("genre", "text", ""), col("published_year", "integer", ""), col("status", "text", "available, on_loan or lost"), col("branch_id", "bigint", "branches.id")}},
		{Name: "loans", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("book_id", "bigint", "books.id"), col("member_id", "bigint", "members.id"),
			col("date", "date", "Day the book was lent"), col("due_date", "date", ""), col("returned_on", "date", ""),
			col("status", "text", "returned, open or overdue"), col("fine", "numeric", "Late fee charged in GBP")}},
	},
	Rows: `
INSERT INTO branches (id, name, city, opened_on) VALUES
  (1, 'Central', 'Leeds', '1998-05-01'), (2, 'Northside', 'Leeds', '2010-09-15'), (3, 'Riverside', 'York', '2005-03-20'), (4, 'Harbour', 'Hull', '2019-06-01');
INSERT INTO members (id, name, city, joined_on, type, branch_id) VALUES
  (1, 'Olivia Hart', 'Leeds', '2019-02-11', 'adult', 1), (2, 'Noah Patel', 'Leeds', '2020-07-03', 'child', 1),
  (3, 'Amelia Stone', 'York', '2018-11-23', 'senior', 3), (4, 'George Lee', 'Hull', '2021-01-15', 'adult', 4),
  (5, 'Isla Brown', 'Leeds', '2022-03-08', 'adult', 2), (6, 'Jack Wilson', 'York', '2023-05-30', 'child', 3),
  (7, 'Mia Khan', 'Leeds', '2024-01-12', 'adult', 2), (8, 'Harry Evans', 'Hull', '2024-03-19', 'senior', 4),
  (9, 'Ava Murphy', 'Leeds', '2024-03-27', 'adult', 1), (10, 'Leo Ward', 'York', '2024-06-02', 'adult', 3),
  (11, 'Ella Green', 'Hull', '2024-09-14', 'child', 4), (12, 'Oscar Hall', 'Leeds', '2025-02-01', 'senior', 2),
  (13, 'Grace Young', 'Bradford', '2025-04-18', 'adult', 1), (14, 'Theo King', 'Leeds', '2025-05-05', 'adult', NULL),
  (15, 'Freya Scott', 'York', '2025-06-21', 'adult', 3), (16, 'Arthur Price', 'Leeds', '2025-07-09', 'child', 1);
INSERT INTO books (id, title, author, genre, published_year, status, branch_id) VALUES
  (1, 'The Silent River', 'Anna Cole', 'Fiction', 2015, 'available', 1), (2, 'Stars Above', 'Ben Ortiz', 'Science', 2019, 'on_loan', 1),
  (3, 'Garden Secrets', 'Clara Diaz', 'Hobby', 2012, 'available', 2), (4, 'Code of Kings', 'Anna Cole', 'Fiction', 2021, 'on_loan', 2),
  (5, 'Deep Oceans', 'Ben Ortiz', 'Science', 2017, 'available', 3), (6, 'Little Fox', 'Dora Finch', 'Children', 2020, 'on_loan', 3),
  (7, 'Winter Tales', 'Anna Cole', 'Fiction', 2008, 'lost', 1), (8, 'Baking Basics', 'Clara Diaz', 'Hobby', 2022, 'available', 4),
  (9, 'The Last Map', 'Evan Moss', 'History', 2016, 'available', 3), (10, 'Rome Rising', 'Evan Moss', 'History', 2011, 'on_loan', 4),
  (11, 'Tiny Planets', 'Dora Finch', 'Children', 2023, 'available', 1), (12, 'Quantum Days', 'Ben Ortiz', 'Science', 2024, 'available', 2),
  (13, 'Harbour Lights', 'Fay Quinn', 'Fiction', 2018, 'available', 4), (14, 'Empire of Salt', 'Evan Moss', 'History', 2020, 'lost', 2),
  (15, 'Moon Garden', 'Dora Finch', 'Children', 2016, 'available', 3), (16, 'Untitled Draft', NULL, 'Fiction', 2024, 'available', 1),
  (17, 'Iron Road', 'Fay Quinn', 'History', 2019, 'available', 1), (18, 'Paper Boats', 'Dora Finch', 'Children', 2021, 'on_loan', 1);
INSERT INTO loans (id, book_id, member_id, date, due_date, returned_on, status, fine) VALUES
  (1, 1, 1, '2024-01-05', '2024-01-26', '2024-01-20', 'returned', 0), (2, 2, 3, '2024-01-18', '2024-02-08', '2024-02-12', 'returned', 2.00),
  (3, 5, 3, '2024-02-02', '2024-02-23', '2024-02-20', 'returned', 0), (4, 3, 5, '2024-02-14', '2024-03-06', '2024-03-01', 'returned', 0),
  (5, 9, 6, '2024-03-03', '2024-03-24', '2024-03-30', 'returned', 1.50), (6, 4, 1, '2024-03-10', '2024-03-31', '2024-03-28', 'returned', 0),
  (7, 7, 2, '2024-03-22', '2024-04-12', NULL, 'overdue', 10.00), (8, 11, 9, '2024-04-01', '2024-04-22', '2024-04-15', 'returned', 0),
  (9, 13, 4, '2024-04-19', '2024-05-10', '2024-05-09', 'returned', 0), (10, 1, 7, '2024-05-07', '2024-05-28', '2024-06-03', 'returned', 1.00),
  (11, 6, 6, '2024-06-11', '2024-07-02', '2024-06-30', 'returned', 0), (12, 10, 8, '2024-07-01', '2024-07-22', '2024-07-20', 'returned', 0),
  (13, 15, 3, '2024-08-15', '2024-09-05', '2024-09-04', 'returned', 0), (14, 14, 5, '2024-09-09', '2024-09-30', NULL, 'overdue', 12.00),
  (15, 17, 1, '2024-10-02', '2024-10-23', '2024-10-25', 'returned', 0.50), (16, 8, 11, '2024-11-20', '2024-12-11', '2024-12-01', 'returned', 0),
  (17, 3, 3, '2024-12-05', '2024-12-26', '2024-12-20', 'returned', 0), (18, 12, 9, '2025-01-08', '2025-01-29', '2025-01-27', 'returned', 0),
  (19, 9, 10, '2025-02-14', '2025-03-07', '2025-03-12', 'returned', 2.50), (20, 15, 2, '2025-03-03', '2025-03-24', '2025-03-18', 'returned', 0),
  (21, 1, 12, '2025-03-15', '2025-04-05', '2025-04-02', 'returned', 0), (22, 13, 4, '2025-04-22', '2025-05-13', '2025-05-10', 'returned', 0),
  (23, 17, 13, '2025-05-30', '2025-06-20', '2025-06-19', 'returned', 0), (24, 10, 8, '2025-06-10', '2025-07-01', NULL, 'overdue', 4.00),
  (25, 2, 1, '2025-07-02', '2025-07-23', NULL, 'overdue', 3.00), (26, 6, 15, '2025-07-20', '2025-08-10', NULL, 'overdue', 1.00),
  (27, 4, 5, '2025-08-01', '2025-08-22', NULL, 'open', 0), (28, 18, 16, '2025-08-12', '2025-09-02', NULL, 'open', 0),
  (29, 11, 9, '2025-08-14', '2025-09-04', '2025-08-19', 'returned', 0), (30, 5, 3, '2025-08-20', '2025-09-10', '2025-08-20', 'returned', 0)`,
	Cases: []Case{
		{"How many members are there?", `SELECT count(*) FROM members`},
		{"How many books are in the Fiction genre?", `SELECT count(*) FROM books WHERE genre = 'Fiction'`},
		{"List the books that are lost", `SELECT * FROM books WHERE status = 'lost' ORDER BY id`},
		{"How many loans are overdue?", `SELECT count(*) FROM loans WHERE status = 'overdue'`},
		{"What is the total amount of fines?", `SELECT sum(fine) FROM loans`},
		{"Which genre has the most books?", `SELECT genre, count(*) FROM books GROUP BY genre ORDER BY 2 DESC, 1 LIMIT 1`},
		{"How many books per author?", `SELECT author, count(*) FROM books GROUP BY author ORDER BY 2 DESC, 1`},
		{"Which members have never borrowed a book?", `SELECT * FROM members m WHERE NOT EXISTS (SELECT 1 FROM loans l WHERE l.member_id = m.id) ORDER BY id`},
		{"List books that have never been borrowed", `SELECT * FROM books b WHERE NOT EXISTS (SELECT 1 FROM loans l WHERE l.book_id = b.id) ORDER BY id`},
		{"How many members joined in 2024?", `SELECT count(*) FROM members WHERE joined_on >= '2024-01-01' AND joined_on < '2025-01-01'`},
		{"List members who joined in March 2024", `SELECT * FROM members WHERE joined_on >= '2024-03-01' AND joined_on < '2024-04-01' ORDER BY id`},
		{"How many loans were made in March 2025?", `SELECT count(*) FROM loans WHERE date >= '2025-03-01' AND date < '2025-04-01'`},
		{"How many loans were returned after their due date?", `SELECT count(*) FROM loans WHERE returned_on > due_date`},
		{"What is the average fine of overdue loans?", `SELECT avg(fine) FROM loans WHERE status = 'overdue'`},
		{"Which member type has the most members?", `SELECT type, count(*) FROM members GROUP BY type ORDER BY 2 DESC, 1 LIMIT 1`},
		{"How many members live in York?", `SELECT count(*) FROM members WHERE city = 'York'`},
		{"List the branches in Leeds", `SELECT * FROM branches WHERE city = 'Leeds' ORDER BY id`},
		// A count per another table's row names the row by its id, and
		// members without a branch are a group of their own, as in
		// Schemas' "per department" and the README's "orders per
		// customer": reading the branches' names needs a join.
		{"How many members does each branch have?", `SELECT branch_id, count(*) FROM members GROUP BY branch_id ORDER BY 2 DESC, 1`},
		{"Which book has been borrowed the most times?", `SELECT book_id, count(*) FROM loans GROUP BY book_id ORDER BY 2 DESC, 1 LIMIT 1`},
		{"What is the average publication year of Science books?", `SELECT avg(published_year) FROM books WHERE genre = 'Science'`},
		{"List loans that have not been returned", `SELECT * FROM loans WHERE returned_on IS NULL ORDER BY id`},
		{"What is the total fine per member type?", `SELECT m.type, sum(l.fine) FROM loans l JOIN members m ON m.id = l.member_id GROUP BY m.type ORDER BY 2 DESC, 1`},
		{"How many loans per month in 2025?", `SELECT date_trunc('month', date), count(*) FROM loans WHERE date >= '2025-01-01' AND date < '2026-01-01' GROUP BY 1 ORDER BY 1`},
		{"What percentage of loans are overdue?", `SELECT 100.0 * count(*) FILTER (WHERE status = 'overdue') / count(*) FROM loans`},
		{"How many distinct members have borrowed a book?", `SELECT count(DISTINCT member_id) FROM loans`},
		{"Which authors have more than 2 books?", `SELECT author FROM books GROUP BY author HAVING count(*) > 2 ORDER BY author`},
		{"List the loans of Olivia Hart", `SELECT l.* FROM loans l JOIN members m ON m.id = l.member_id WHERE m.name = 'Olivia Hart' ORDER BY l.id`},
		{"List members who joined last year", `SELECT * FROM members WHERE joined_on >= date_trunc('year', (SELECT max(joined_on) FROM members)) - interval '1 year' AND joined_on < date_trunc('year', (SELECT max(joined_on) FROM members)) ORDER BY id`},
		{"Which branch opened most recently?", `SELECT * FROM branches ORDER BY opened_on DESC LIMIT 1`},
		{"How many books are available at the Central branch?", `SELECT count(*) FROM books b JOIN branches br ON br.id = b.branch_id WHERE br.name = 'Central' AND b.status = 'available'`},
		// Written after reading the generator, at the weaknesses the questions
		// above had shown ("more than N <rows>", "last month", "the total of").
		{"Which genres have more than 3 books?", `SELECT genre FROM books GROUP BY genre HAVING count(*) > 3 ORDER BY genre`},
		{"How many authors have more than 2 books?", `SELECT count(*) FROM (SELECT author FROM books GROUP BY author HAVING count(*) > 2) s`},
		{"How many members joined last month?", `SELECT count(*) FROM members WHERE joined_on >= date_trunc('month', (SELECT max(joined_on) FROM members)) - interval '1 month' AND joined_on < date_trunc('month', (SELECT max(joined_on) FROM members))`},
		{"How many loans had a fine over 2?", `SELECT count(*) FROM loans WHERE fine > 2`},
		{"Which members have more than 3 loans?", `SELECT * FROM members WHERE id IN (SELECT member_id FROM loans GROUP BY member_id HAVING count(*) > 3) ORDER BY id`},
		{"List books published after 2020", `SELECT * FROM books WHERE published_year > 2020 ORDER BY id`},
		{"How many books were published in 2020?", `SELECT count(*) FROM books WHERE published_year = 2020`},
		{"How many members are children?", `SELECT count(*) FROM members WHERE type = 'child'`},
		{"How many children's books are there?", `SELECT count(*) FROM books WHERE genre = 'Children'`},
		{"How many books are on loan?", `SELECT count(*) FROM books WHERE status = 'on_loan'`},
		// Unanswerable.
		{"What is the email address of each member?", ""},
		{"Which book has the best rating?", ""},
		{"How many pages does The Silent River have?", ""},
		{"Who is the best member?", ""},
		{"What is the late fee per day?", ""},
		{"How many e-books were downloaded last month?", ""},
		{"Which librarian processed the most loans?", ""},
		{"How many books are in the Poetry genre?", ""},
		{"What is the average age of members?", ""},
		{"How many members renewed their membership?", ""},
	},
}

// Clinic is a group of clinics: clinics, doctors, patients, appointments.
var Clinic = Schema{
	Name: "clinic",
	Tables: []catalog.TableSpec{
		{Name: "clinics", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("name", "text", ""), col("city", "text", "")}},
		{Name: "doctors", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("name", "text", ""), col("specialty", "text", ""),
			col("clinic_id", "bigint", "clinics.id"), col("hired_on", "date", "")}},
		{Name: "patients", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("name", "text", ""), col("birth_date", "date", ""),
			col("city", "text", ""), col("insurance", "text", "public, private, or NULL when uninsured")}},
		{Name: "appointments", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("patient_id", "bigint", "patients.id"), col("doctor_id", "bigint", "doctors.id"),
			col("date", "date", ""), col("status", "text", "completed, cancelled, no_show or scheduled"), col("type", "text", "checkup, follow_up, consultation or vaccination"),
			col("fee", "numeric", "Amount billed in USD"), col("duration_minutes", "integer", "")}},
	},
	Rows: `
INSERT INTO clinics (id, name, city) VALUES (1, 'Maple Clinic', 'Boston'), (2, 'Harbor Health', 'Portland'), (3, 'Summit Care', 'Denver');
INSERT INTO doctors (id, name, specialty, clinic_id, hired_on) VALUES
  (1, 'Dr. Sarah Lin', 'Cardiology', 1, '2015-04-01'), (2, 'Dr. Omar Reyes', 'Pediatrics', 1, '2018-09-10'),
  (3, 'Dr. Julia Novak', 'Dermatology', 2, '2020-01-06'), (4, 'Dr. Ken Watanabe', 'Cardiology', 3, '2012-06-15'),
  (5, 'Dr. Priya Shah', 'General Practice', 2, '2021-03-22'), (6, 'Dr. Tom Becker', 'General Practice', 3, '2023-08-01'),
  (7, 'Dr. Ana Souza', 'General Practice', 1, '2024-02-12');
INSERT INTO patients (id, name, birth_date, city, insurance) VALUES
  (1, 'Emma Clark', '1985-03-12', 'Boston', 'private'), (2, 'Liam Turner', '2015-07-30', 'Boston', 'public'),
  (3, 'Sofia Rossi', '1952-11-02', 'Portland', 'public'), (4, 'Lucas Meyer', '1978-01-25', 'Denver', 'private'),
  (5, 'Chloe Martin', '1999-09-09', 'Portland', NULL), (6, 'Ethan Young', '1964-05-17', 'Denver', 'public'),
  (7, 'Zoe Adams', '2018-12-01', 'Boston', 'private'), (8, 'Mason Hill', '1990-06-21', 'Denver', 'private'),
  (9, 'Ava Lopez', '1947-08-14', 'Boston', 'public'), (10, 'Noah Kim', '2001-02-28', 'Portland', 'private'),
  (11, 'Lily Baker', '1983-10-10', 'Denver', NULL), (12, 'Jacob Reed', '1970-04-04', 'Boston', 'public'),
  (13, 'Henry Fox', '1995-12-12', 'Seattle', 'private'), (14, 'Mia Patel', '1988-07-07', 'Boston', 'public');
INSERT INTO appointments (id, patient_id, doctor_id, date, status, type, fee, duration_minutes) VALUES
  (1, 1, 1, '2025-01-06', 'completed', 'consultation', 180, 30), (2, 2, 2, '2025-01-08', 'completed', 'vaccination', 40, 15),
  (3, 3, 3, '2025-01-13', 'completed', 'consultation', 150, 30), (4, 4, 4, '2025-01-20', 'cancelled', 'checkup', 0, 30),
  (5, 6, 4, '2025-01-22', 'completed', 'checkup', 120, 45), (6, 7, 2, '2025-02-03', 'completed', 'checkup', 90, 20),
  (7, 9, 1, '2025-02-05', 'completed', 'follow_up', 100, 20), (8, 5, 5, '2025-02-11', 'no_show', 'consultation', 0, 30),
  (9, 8, 6, '2025-02-18', 'completed', 'checkup', 95, 30), (10, 1, 1, '2025-02-24', 'completed', 'follow_up', 100, 20),
  (11, 10, 3, '2025-03-04', 'completed', 'consultation', 150, 30), (12, 12, 5, '2025-03-05', 'completed', 'checkup', 85, 30),
  (13, 3, 5, '2025-03-12', 'cancelled', 'follow_up', 0, 20), (14, 6, 4, '2025-03-18', 'completed', 'follow_up', 110, 30),
  (15, 2, 2, '2025-03-25', 'no_show', 'checkup', 0, 20), (16, 9, 1, '2025-04-02', 'completed', 'checkup', 130, 45),
  (17, 4, 6, '2025-04-08', 'completed', 'consultation', 140, 30), (18, 11, 5, '2025-04-15', 'completed', 'vaccination', 35, 10),
  (19, 7, 2, '2025-04-22', 'completed', 'vaccination', 40, 15), (20, 8, 4, '2025-04-29', 'cancelled', 'consultation', 0, 30),
  (21, 12, 1, '2025-05-06', 'completed', 'consultation', 180, 40), (22, 3, 3, '2025-05-13', 'completed', 'follow_up', 90, 20),
  (23, 1, 5, '2025-05-20', 'no_show', 'checkup', 0, 30), (24, 6, 6, '2025-05-27', 'completed', 'checkup', 95, 30),
  (25, 9, 4, '2025-06-03', 'completed', 'follow_up', 110, 30), (26, 10, 3, '2025-06-10', 'cancelled', 'follow_up', 0, 20),
  (27, 4, 1, '2025-06-17', 'scheduled', 'follow_up', 100, 20), (28, 2, 2, '2025-06-24', 'scheduled', 'checkup', 90, 20),
  (29, 12, 6, '2025-06-26', 'scheduled', 'consultation', 140, 30), (30, 8, 6, '2025-06-27', 'scheduled', 'checkup', 85, 30)`,
	Cases: []Case{
		{"How many appointments were cancelled?", `SELECT count(*) FROM appointments WHERE status = 'cancelled'`},
		{"How many appointments per status?", `SELECT status, count(*) FROM appointments GROUP BY status ORDER BY 2 DESC, 1`},
		{"What is the total fee of completed appointments?", `SELECT sum(fee) FROM appointments WHERE status = 'completed'`},
		{"What is the average fee of completed checkups?", `SELECT avg(fee) FROM appointments WHERE status = 'completed' AND type = 'checkup'`},
		{"List the doctors with specialty Cardiology", `SELECT * FROM doctors WHERE specialty = 'Cardiology' ORDER BY id`},
		{"How many patients live in Boston?", `SELECT count(*) FROM patients WHERE city = 'Boston'`},
		{"Which patients have no insurance?", `SELECT * FROM patients WHERE insurance IS NULL ORDER BY id`},
		{"How many patients have private insurance?", `SELECT count(*) FROM patients WHERE insurance = 'private'`},
		{"List patients born before 1960", `SELECT * FROM patients WHERE birth_date < '1960-01-01' ORDER BY id`},
		{"Who is the youngest patient?", `SELECT * FROM patients ORDER BY birth_date DESC LIMIT 1`},
		{"How many appointments were in March 2025?", `SELECT count(*) FROM appointments WHERE date >= '2025-03-01' AND date < '2025-04-01'`},
		{"Which appointment type is most common?", `SELECT type, count(*) FROM appointments GROUP BY type ORDER BY 2 DESC, 1 LIMIT 1`},
		{"Which patients have never had an appointment?", `SELECT * FROM patients p WHERE NOT EXISTS (SELECT 1 FROM appointments a WHERE a.patient_id = p.id) ORDER BY id`},
		{"How many no-shows were there?", `SELECT count(*) FROM appointments WHERE status = 'no_show'`},
		{"What is the average appointment duration?", `SELECT avg(duration_minutes) FROM appointments`},
		{"Which doctor has the most appointments?", `SELECT doctor_id, count(*) FROM appointments GROUP BY doctor_id ORDER BY 2 DESC, 1 LIMIT 1`},
		{"Total fees per doctor for completed appointments", `SELECT doctor_id, sum(fee) FROM appointments WHERE status = 'completed' GROUP BY doctor_id ORDER BY 2 DESC, 1`},
		{"How many appointments did Dr. Sarah Lin have?", `SELECT count(*) FROM appointments a JOIN doctors d ON d.id = a.doctor_id WHERE d.name = 'Dr. Sarah Lin'`},
		{"List the appointments of patient Emma Clark", `SELECT a.* FROM appointments a JOIN patients p ON p.id = a.patient_id WHERE p.name = 'Emma Clark' ORDER BY a.id`},
		{"How many doctors work at Maple Clinic?", `SELECT count(*) FROM doctors d JOIN clinics c ON c.id = d.clinic_id WHERE c.name = 'Maple Clinic'`},
		{"How many appointments per clinic?", `SELECT c.name, count(*) FROM appointments a JOIN doctors d ON d.id = a.doctor_id JOIN clinics c ON c.id = d.clinic_id GROUP BY c.name ORDER BY 2 DESC, 1`},
		{"How many patients had more than 2 appointments?", `SELECT count(*) FROM (SELECT patient_id FROM appointments GROUP BY patient_id HAVING count(*) > 2) s`},
		{"What percentage of appointments were cancelled?", `SELECT 100.0 * count(*) FILTER (WHERE status = 'cancelled') / count(*) FROM appointments`},
		{"List the scheduled appointments", `SELECT * FROM appointments WHERE status = 'scheduled' ORDER BY id`},
		{"How many different patients have appointments with Dr. Ken Watanabe?", `SELECT count(DISTINCT a.patient_id) FROM appointments a JOIN doctors d ON d.id = a.doctor_id WHERE d.name = 'Dr. Ken Watanabe'`},
		{"How many appointments per month?", `SELECT date_trunc('month', date), count(*) FROM appointments GROUP BY 1 ORDER BY 1`},
		{"Which specialty has the most doctors?", `SELECT specialty, count(*) FROM doctors GROUP BY specialty ORDER BY 2 DESC, 1 LIMIT 1`},
		{"Which doctors have no appointments?", `SELECT * FROM doctors d WHERE NOT EXISTS (SELECT 1 FROM appointments a WHERE a.doctor_id = d.id) ORDER BY id`},
		{"How many appointments were completed in the first quarter of 2025?", `SELECT count(*) FROM appointments WHERE status = 'completed' AND date >= '2025-01-01' AND date < '2025-04-01'`},
		{"Who was the most recently hired doctor?", `SELECT * FROM doctors ORDER BY hired_on DESC LIMIT 1`},
		// Written after reading the generator, at the weaknesses the questions
		// above had shown ("more than N <rows>", "last month", "the total of").
		{"How many appointments lasted more than 30 minutes?", `SELECT count(*) FROM appointments WHERE duration_minutes > 30`},
		{"How many appointments were there last month?", `SELECT count(*) FROM appointments WHERE date >= date_trunc('month', (SELECT max(date) FROM appointments)) - interval '1 month' AND date < date_trunc('month', (SELECT max(date) FROM appointments))`},
		{"Which doctors have more than 5 appointments?", `SELECT * FROM doctors WHERE id IN (SELECT doctor_id FROM appointments GROUP BY doctor_id HAVING count(*) > 5) ORDER BY id`},
		{"How many appointments cost more than 100?", `SELECT count(*) FROM appointments WHERE fee > 100`},
		{"How many appointments had a fee over 100?", `SELECT count(*) FROM appointments WHERE fee > 100`},
		// Unanswerable.
		{"What is the phone number of each patient?", ""},
		{"Which doctor is the best?", ""},
		{"What diagnosis did Emma Clark receive?", ""},
		{"How long did patients wait in the waiting room?", ""},
		{"Which medications were prescribed most often?", ""},
		{"How many appointments were booked online?", ""},
		{"What is the average patient satisfaction score?", ""},
		{"List the appointments with Dr. Gregory House", ""},
		{"How many patients are older than their doctor?", ""},
		{"What is the total revenue of the Chicago clinic?", ""},
	},
}

// Shop is a web shop: customers, orders, shipments and returns.
var Shop = Schema{
	Name: "shop",
	Tables: []catalog.TableSpec{
		{Name: "customers", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("name", "text", ""), col("email", "text", ""),
			col("city", "text", ""), col("country", "text", ""), col("created_at", "date", "Sign-up day")}},
		{Name: "orders", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("customer_id", "bigint", "customers.id"), col("date", "date", ""),
			col("status", "text", "pending, shipped, delivered or cancelled"), col("total", "numeric", "Order value in EUR"), col("channel", "text", "web or app")}},
		{Name: "shipments", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("order_id", "bigint", "orders.id"), col("carrier", "text", ""),
			col("type", "text", "standard or express"), col("shipped_on", "date", ""), col("delivered_on", "date", ""), col("cost", "numeric", "Shipping cost in EUR")}},
		{Name: "returns", Columns: []catalog.ColumnSpec{col("id", "bigint", ""), col("order_id", "bigint", "orders.id"), col("date", "date", ""),
			col("reason", "text", ""), col("amount", "numeric", "Refund in EUR"), col("status", "text", "pending, approved or rejected")}},
	},
	Rows: `
INSERT INTO customers (id, name, email, city, country, created_at) VALUES
  (1, 'Hannah Weber', 'hannah@example.com', 'Munich', 'Germany', '2023-02-10'), (2, 'Pierre Dubois', 'pierre@example.com', 'Lyon', 'France', '2023-05-22'),
  (3, 'Marta Nowak', 'marta@example.com', 'Warsaw', 'Poland', '2023-08-01'), (4, 'Jonas Berg', 'jonas@example.com', 'Munich', 'Germany', '2023-11-15'),
  (5, 'Lucia Romano', 'lucia@example.com', 'Milan', 'Italy', '2024-01-09'), (6, 'Sven Larsen', 'sven@example.com', 'Oslo', 'Norway', '2024-02-28'),
  (7, 'Elena Garcia', 'elena@example.com', 'Madrid', 'Spain', '2024-04-03'), (8, 'Felix Braun', NULL, 'Hamburg', 'Germany', '2024-06-17'),
  (9, 'Claire Petit', 'claire@example.com', 'Paris', 'France', '2024-09-30'), (10, 'Tomasz Zielinski', 'tomasz@example.com', 'Krakow', 'Poland', '2024-12-05');
INSERT INTO orders (id, customer_id, date, status, total, channel) VALUES
  (1, 1, '2024-01-15', 'delivered', 120.50, 'web'), (2, 2, '2024-02-03', 'delivered', 89.00, 'app'),
  (3, 1, '2024-02-20', 'delivered', 45.00, 'web'), (4, 3, '2024-03-05', 'cancelled', 210.00, 'web'),
  (5, 4, '2024-03-18', 'delivered', 300.00, 'app'), (6, 5, '2024-03-29', 'delivered', 64.90, 'web'),
  (7, 2, '2024-04-11', 'delivered', 150.00, 'web'), (8, 6, '2024-05-06', 'delivered', 35.00, 'app'),
  (9, 1, '2024-05-24', 'delivered', 230.00, 'web'), (10, 7, '2024-06-14', 'cancelled', 15.00, 'app'),
  (11, 3, '2024-07-02', 'delivered', 99.99, 'web'), (12, 4, '2024-07-19', 'delivered', 410.00, 'web'),
  (13, 5, '2024-08-08', 'delivered', 25.00, 'app'), (14, 9, '2024-10-12', 'delivered', 180.00, 'web'),
  (15, 2, '2024-11-29', 'delivered', 275.00, 'web'), (16, 6, '2024-12-03', 'delivered', 55.00, 'app'),
  (17, 1, '2024-12-18', 'delivered', 140.00, 'app'), (18, 7, '2025-01-07', 'delivered', 60.00, 'web'),
  (19, 9, '2025-01-21', 'shipped', 120.00, 'web'), (20, 4, '2025-02-02', 'shipped', 85.00, 'app'),
  (21, 3, '2025-02-14', 'delivered', 47.50, 'web'), (22, 5, '2025-02-27', 'pending', 330.00, 'web'),
  (23, 2, '2025-03-03', 'pending', 72.00, 'app'), (24, 1, '2025-03-10', 'cancelled', 19.99, 'web'),
  (25, 6, '2025-03-12', 'pending', 160.00, 'web');
INSERT INTO shipments (id, order_id, carrier, type, shipped_on, delivered_on, cost) VALUES
  (1, 1, 'DHL', 'standard', '2024-01-16', '2024-01-19', 5.90), (2, 2, 'UPS', 'express', '2024-02-03', '2024-02-05', 12.50),
  (3, 3, 'DHL', 'standard', '2024-02-21', '2024-02-26', 5.90), (4, 5, 'DPD', 'standard', '2024-03-19', '2024-03-22', 6.50),
  (5, 6, 'DHL', 'express', '2024-03-30', '2024-04-01', 11.00), (6, 7, 'UPS', 'standard', '2024-04-12', '2024-04-18', 7.20),
  (7, 8, 'DPD', 'standard', '2024-05-07', '2024-05-13', 6.50), (8, 9, 'DHL', 'express', '2024-05-24', '2024-05-25', 11.00),
  (9, 11, 'DPD', 'standard', '2024-07-03', '2024-07-08', 6.50), (10, 12, 'UPS', 'express', '2024-07-19', '2024-07-22', 12.50),
  (11, 13, 'DHL', 'standard', '2024-08-09', '2024-08-14', 5.90), (12, 14, 'UPS', 'standard', '2024-10-14', '2024-10-18', 7.20),
  (13, 15, 'DHL', 'express', '2024-11-29', '2024-12-02', 11.00), (14, 16, 'DPD', 'standard', '2024-12-04', '2024-12-10', 6.50),
  (15, 17, 'DHL', 'standard', '2024-12-19', '2024-12-27', 5.90), (16, 18, 'UPS', 'standard', '2025-01-08', '2025-01-13', 7.20),
  (17, 19, 'DHL', 'express', '2025-01-22', NULL, 11.00), (18, 20, 'DPD', 'standard', '2025-02-03', NULL, 6.50),
  (19, 21, 'DHL', 'standard', '2025-02-15', '2025-02-19', 5.90);
INSERT INTO returns (id, order_id, date, reason, amount, status) VALUES
  (1, 1, '2024-01-25', 'damaged', 120.50, 'approved'), (2, 5, '2024-03-28', 'wrong size', 150.00, 'approved'),
  (3, 7, '2024-04-25', 'changed mind', 150.00, 'rejected'), (4, 9, '2024-06-01', 'damaged', 80.00, 'approved'),
  (5, 12, '2024-07-30', 'wrong size', 410.00, 'approved'), (6, 14, '2024-10-25', 'late delivery', 60.00, 'approved'),
  (7, 15, '2024-12-10', 'wrong size', 100.00, 'rejected'), (8, 17, '2025-01-03', 'damaged', 140.00, 'approved'),
  (9, 18, '2025-01-20', 'changed mind', 60.00, 'pending'), (10, 21, '2025-02-25', 'wrong size', 47.50, 'pending'),
  (11, 2, '2024-02-15', 'late delivery', 30.00, 'approved')`,
	Cases: []Case{
		{"How many orders were cancelled?", `SELECT count(*) FROM orders WHERE status = 'cancelled'`},
		{"What is the total revenue from delivered orders?", `SELECT sum(total) FROM orders WHERE status = 'delivered'`},
		{"What is the average order total?", `SELECT avg(total) FROM orders`},
		{"Which customers have never placed an order?", `SELECT * FROM customers c WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id) ORDER BY id`},
		{"How many customers are from Germany?", `SELECT count(*) FROM customers WHERE country = 'Germany'`},
		{"List customers in Munich", `SELECT * FROM customers WHERE city = 'Munich' ORDER BY id`},
		{"Which country has the most customers?", `SELECT country, count(*) FROM customers GROUP BY country ORDER BY 2 DESC, 1 LIMIT 1`},
		{"Number of orders per customer", `SELECT customer_id, count(*) FROM orders GROUP BY customer_id ORDER BY 2 DESC, 1`},
		{"Which customer placed the most orders?", `SELECT customer_id, count(*) FROM orders GROUP BY customer_id ORDER BY 2 DESC, 1 LIMIT 1`},
		{"How many orders were placed in March 2024?", `SELECT count(*) FROM orders WHERE date >= '2024-03-01' AND date < '2024-04-01'`},
		{"How many orders were placed in 2025?", `SELECT count(*) FROM orders WHERE date >= '2025-01-01' AND date < '2026-01-01'`},
		{"List the pending orders", `SELECT * FROM orders WHERE status = 'pending' ORDER BY id`},
		{"Show the 3 largest orders", `SELECT * FROM orders ORDER BY total DESC LIMIT 3`},
		{"How many orders were placed through the app?", `SELECT count(*) FROM orders WHERE channel = 'app'`},
		{"Average order total per channel", `SELECT channel, avg(total) FROM orders GROUP BY channel ORDER BY 2 DESC, 1`},
		{"How many shipments did DHL handle?", `SELECT count(*) FROM shipments WHERE carrier = 'DHL'`},
		{"What is the average shipping cost per carrier?", `SELECT carrier, avg(cost) FROM shipments GROUP BY carrier ORDER BY 2 DESC, 1`},
		{"How many express shipments were there?", `SELECT count(*) FROM shipments WHERE type = 'express'`},
		{"Which shipments have not been delivered yet?", `SELECT * FROM shipments WHERE delivered_on IS NULL ORDER BY id`},
		{"What is the average delivery time in days?", `SELECT avg(delivered_on - shipped_on) FROM shipments`},
		{"How many returns were approved?", `SELECT count(*) FROM returns WHERE status = 'approved'`},
		{"What is the total refund amount of approved returns?", `SELECT sum(amount) FROM returns WHERE status = 'approved'`},
		{"What is the most common return reason?", `SELECT reason, count(*) FROM returns GROUP BY reason ORDER BY 2 DESC, 1 LIMIT 1`},
		{"Which customers returned an order?", `SELECT * FROM customers c WHERE EXISTS (SELECT 1 FROM orders o JOIN returns r ON r.order_id = o.id WHERE o.customer_id = c.id) ORDER BY id`},
		{"What is the total order value of customers from France?", `SELECT sum(o.total) FROM orders o JOIN customers c ON c.id = o.customer_id WHERE c.country = 'France'`},
		{"How many delivered orders have no return?", `SELECT count(*) FROM orders o WHERE o.status = 'delivered' AND NOT EXISTS (SELECT 1 FROM returns r WHERE r.order_id = o.id)`},
		{"What percentage of orders were cancelled?", `SELECT 100.0 * count(*) FILTER (WHERE status = 'cancelled') / count(*) FROM orders`},
		{"How many customers signed up in 2024?", `SELECT count(*) FROM customers WHERE created_at >= '2024-01-01' AND created_at < '2025-01-01'`},
		{"Which customers have no email?", `SELECT * FROM customers WHERE email IS NULL ORDER BY id`},
		{"How many web orders were over 100?", `SELECT count(*) FROM orders WHERE channel = 'web' AND total > 100`},
		// Written after reading the generator, at the weaknesses the questions
		// above had shown ("more than N <rows>", "last month", "the total of").
		{"Which shipments took more than 5 days?", `SELECT * FROM shipments WHERE delivered_on - shipped_on > 5 ORDER BY id`},
		{"How many orders have more than 1 return?", `SELECT count(*) FROM (SELECT order_id FROM returns GROUP BY order_id HAVING count(*) > 1) s`},
		{"How many orders were placed last year?", `SELECT count(*) FROM orders WHERE date >= date_trunc('year', (SELECT max(date) FROM orders)) - interval '1 year' AND date < date_trunc('year', (SELECT max(date) FROM orders))`},
		{"How many orders were placed last month?", `SELECT count(*) FROM orders WHERE date >= date_trunc('month', (SELECT max(date) FROM orders)) - interval '1 month' AND date < date_trunc('month', (SELECT max(date) FROM orders))`},
		{"How many orders were shipped in January 2025?", `SELECT count(*) FROM shipments WHERE shipped_on >= '2025-01-01' AND shipped_on < '2025-02-01'`},
		{"Which customers have more than 3 orders?", `SELECT * FROM customers WHERE id IN (SELECT customer_id FROM orders GROUP BY customer_id HAVING count(*) > 3) ORDER BY id`},
		{"Which orders took more than 3 days to deliver?", `SELECT o.* FROM orders o JOIN shipments s ON s.order_id = o.id WHERE s.delivered_on - s.shipped_on > 3 ORDER BY o.id`},
		{"How many returns were over 100?", `SELECT count(*) FROM returns WHERE amount > 100`},
		{"What is the total of cancelled orders?", `SELECT sum(total) FROM orders WHERE status = 'cancelled'`},
		{"Which carrier delivered the most shipments?", `SELECT carrier, count(*) FROM shipments WHERE delivered_on IS NOT NULL GROUP BY carrier ORDER BY 2 DESC, 1 LIMIT 1`},
		{"How many express shipments took more than 2 days?", `SELECT count(*) FROM shipments WHERE type = 'express' AND delivered_on - shipped_on > 2`},
		{"How many orders over 100 were returned?", `SELECT count(*) FROM orders o WHERE total > 100 AND EXISTS (SELECT 1 FROM returns r WHERE r.order_id = o.id)`},
		// Unanswerable.
		{"Which product is the best seller?", ""},
		{"What is the profit margin on each order?", ""},
		{"How many items were in order 12?", ""},
		{"What is the tracking number of each shipment?", ""},
		{"Which carrier is the best?", ""},
		{"How many orders used a discount code?", ""},
		{"What is the average age of customers?", ""},
		{"List the orders shipped by FedEx", ""},
		{"How many customers unsubscribed from the newsletter?", ""},
		{"What was the total tax collected?", ""},
	},
}
