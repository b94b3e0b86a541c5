-- name: CreateTrainingData :one
INSERT INTO dbchat.training_data (model_id, kind, question, content, embedding, embedder)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING *;
