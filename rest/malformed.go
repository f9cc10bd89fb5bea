package rest

import (
	"bytes"
	"encoding/json"
	"net"
	"strconv"

	"github.com/agentstate/agentstate-go/core"
)

// net/http answers a request it cannot parse (a path with "%zz", a bad header) itself, before
// any handler runs, with a plain-text reply and a closed connection. Clients of the v1 API
// read every error as {"error":{...}} (compat-v1.md §4), so EnvelopeListener puts that reply
// in the envelope. There is no hook for it in http.Server; the reply is recognised by the
// fixed header block net/http writes for it, which no handler response can contain (those
// carry Date and Content-Length, and sort Connection before Content-Type).
var (
	plainRejectHeaders = []byte("\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\n")
	statusLinePrefix   = []byte("HTTP/1.1 ")
)

// maxPlainReject bounds the writes inspected: net/http's own rejection is one short write.
const maxPlainReject = 512

// EnvelopeListener wraps ln so net/http's pre-handler rejections reach clients in the v1
// error envelope, with their status kept.
func EnvelopeListener(ln net.Listener) net.Listener { return envelopeListener{ln} }

type envelopeListener struct{ net.Listener }

func (l envelopeListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return envelopeConn{c}, nil
}

type envelopeConn struct{ net.Conn }

func (c envelopeConn) Write(p []byte) (int, error) {
	if len(p) > maxPlainReject || !bytes.HasPrefix(p, statusLinePrefix) {
		return c.Conn.Write(p)
	}
	head, _, ok := bytes.Cut(p, plainRejectHeaders)
	if !ok {
		return c.Conn.Write(p)
	}
	if _, err := c.Conn.Write(envelopeReject(head[len(statusLinePrefix):])); err != nil {
		return 0, err
	}
	return len(p), nil
}

// envelopeReject rebuilds the reply from its status line "<code> <text>[: <reason>]".
func envelopeReject(statusLine []byte) []byte {
	status, rest, _ := bytes.Cut(statusLine, []byte(" "))
	if code, err := strconv.Atoi(string(status)); err != nil || code < 400 || code > 599 {
		statusLine = []byte("400 Bad Request")
	}
	// Every one of them (400, 431, 501, 505) is a request the client must change: BAD_REQUEST.
	we := core.WireError{Code: core.CodeBadRequest, Message: core.MsgMalformedRequest}
	if _, reason, ok := bytes.Cut(rest, []byte(": ")); ok {
		// net/http's reasons are fixed texts ("missing required Host header"), never client input.
		we.Details = map[string]string{"reason": string(reason)}
	}
	body, _ := json.Marshal(map[string]core.WireError{"error": we})
	var b bytes.Buffer
	b.WriteString("HTTP/1.1 ")
	b.Write(statusLine)
	b.WriteString("\r\nContent-Type: application/json\r\nConnection: close\r\n")
	b.WriteString(headerRequestID + ": " + core.NewShortID() + "\r\n")
	b.WriteString("Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	b.Write(body)
	return b.Bytes()
}
