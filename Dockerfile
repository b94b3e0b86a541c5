# Multi-stage build of the single dbchat binary.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN go build -trimpath -o /out/dbchat ./cmd/dbchat

FROM debian:bookworm-slim
RUN useradd --system --no-create-home dbchat
COPY --from=build /out/dbchat /usr/local/bin/dbchat
USER dbchat
EXPOSE 8080
ENTRYPOINT []
CMD ["dbchat", "serve"]
