# Builds the AgentState HTTP server (REST /api/v1 + MCP at /api/mcp).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/agentstate-http ./cmd/http-server \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/agentstate-mcp ./cmd/mcp-server \
 && CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/agentstate-admin ./cmd/admin

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/ /usr/local/bin/
ENV AGENTSTATE_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/agentstate-http"]
