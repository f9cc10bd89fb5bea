package tools

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
)

// notFoundText starts the message of the error a resource handler returns for a resource that
// does not exist (followed by the URI). mcp-go v1.2.1 (the newest release) reports every error
// a resource handler returns as -32603, internal error, and offers no way to choose the code or
// set data. So the transports' output passes through rewriteNotFound, which turns an error
// response with this message into the spec's resource-not-found: -32002 with data.uri.
const notFoundText = "Resource not found: "

// rewriteNotFound rewrites the resource-not-found error responses in one chunk a transport
// writes: stdio lines, a streamable HTTP JSON body, or SSE frames ("data: {…}"). mcp-go writes
// each message whole in one Write, so a message never spans chunks. Everything else is
// returned unchanged, byte for byte.
func rewriteNotFound(chunk []byte) []byte {
	if !bytes.Contains(chunk, []byte(notFoundText)) {
		return chunk // the fast path: nearly every message
	}
	lines := bytes.SplitAfter(chunk, []byte("\n"))
	for i, line := range lines {
		body := bytes.TrimRight(line, "\r\n")
		prefix := []byte{}
		if rest, ok := bytes.CutPrefix(body, []byte("data:")); ok {
			prefix, body = []byte("data: "), bytes.TrimLeft(rest, " ")
		}
		var msg mcp.JSONRPCError
		if json.Unmarshal(body, &msg) != nil || msg.Error.Code != mcp.INTERNAL_ERROR {
			continue
		}
		uri, ok := strings.CutPrefix(msg.Error.Message, notFoundText)
		if !ok {
			continue
		}
		msg.Error = mcp.NewJSONRPCErrorDetails(mcp.RESOURCE_NOT_FOUND, "Resource not found", map[string]any{"uri": uri})
		b, err := json.Marshal(msg)
		if err != nil {
			continue
		}
		lines[i] = append(append(prefix, b...), line[len(bytes.TrimRight(line, "\r\n")):]...)
	}
	return bytes.Join(lines, nil)
}

// NotFoundWriter is w with resource-not-found errors rewritten (the stdio transport's output).
func NotFoundWriter(w io.Writer) io.Writer { return notFoundWriter{w} }

type notFoundWriter struct{ w io.Writer }

func (n notFoundWriter) Write(p []byte) (int, error) {
	if _, err := n.w.Write(rewriteNotFound(p)); err != nil {
		return 0, err
	}
	return len(p), nil // the caller wrote p; what went out instead is ours to answer for
}

// NotFoundHandler serves next with resource-not-found errors rewritten in its responses: the
// streamable HTTP POST answers and the SSE stream.
func NotFoundHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&notFoundResponse{ResponseWriter: w}, r)
	})
}

type notFoundResponse struct{ http.ResponseWriter }

func (n *notFoundResponse) Write(p []byte) (int, error) {
	if _, err := n.ResponseWriter.Write(rewriteNotFound(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush keeps the SSE streams streaming: mcp-go flushes after every event.
func (n *notFoundResponse) Flush() {
	if f, ok := n.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection (deadlines).
func (n *notFoundResponse) Unwrap() http.ResponseWriter { return n.ResponseWriter }
