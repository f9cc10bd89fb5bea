// Package core holds AgentState's domain: types, validation, services, the scope model and
// error codes. It imports no HTTP, MCP or Redis package: transports call it, stores serve it.
package core

import (
	"errors"
	"fmt"
)

// Code is a machine-readable error code. The v1 codes are wire values and must not change.
type Code string

// Error codes. The first block is v1's set (compat-v1.md §4.1); the rest are this project's.
const (
	CodeBadRequest            Code = "BAD_REQUEST"
	CodeInvalidCursor         Code = "INVALID_CURSOR"
	CodeUnauthorized          Code = "UNAUTHORIZED"
	CodeForbidden             Code = "FORBIDDEN"
	CodeNotFound              Code = "NOT_FOUND"
	CodeConflict              Code = "CONFLICT"
	CodeLeaseConflict         Code = "LEASE_CONFLICT"
	CodeLeaseRequired         Code = "LEASE_REQUIRED"
	CodeLeaseExpired          Code = "LEASE_EXPIRED"
	CodeIdempotencyConflict   Code = "IDEMPOTENCY_CONFLICT"
	CodeIdempotencyInProgress Code = "IDEMPOTENCY_IN_PROGRESS"
	CodeMethodNotAllowed      Code = "METHOD_NOT_ALLOWED"
	CodeRateLimited           Code = "RATE_LIMITED"
	CodeInvalidField          Code = "INVALID_FIELD"
	CodeInvalidTag            Code = "INVALID_TAG"
	CodeInternal              Code = "INTERNAL_ERROR"

	CodeVersionConflict    Code = "VERSION_CONFLICT"
	CodePayloadTooLarge    Code = "PAYLOAD_TOO_LARGE"
	CodeStaleFencingToken  Code = "STALE_FENCING_TOKEN"
	CodeServiceUnavailable Code = "SERVICE_UNAVAILABLE"
	// CodeStoreUnavailable: Redis is unreachable, restarting or failing over. The request may
	// be sent again after Retry-After; a write answered with it may or may not have been kept.
	CodeStoreUnavailable Code = "STORE_UNAVAILABLE"
	// CodeStoreReset: the store's data was lost under a running server (flushed, or restored
	// from an older snapshot). Retrying does not help: serving would reissue sequences and
	// fencing tokens, so the server refuses until an operator steps in.
	CodeStoreReset Code = "STORE_RESET"
)

// Error is the one error type that crosses layers. Op says where it arose ("core.States.Put"),
// Code what kind it is; Message is safe to show a client. Details, when set, is added to the
// wire error object (for example the current state on VERSION_CONFLICT).
type Error struct {
	Op      string
	Code    Code
	Message string
	Details any
	Err     error // the cause, never shown to clients
}

func (e *Error) Error() string {
	var inner *Error
	if errors.As(e.Err, &inner) && inner.Code == e.Code && inner.Message == e.Message {
		return e.Op + ": " + inner.Error() // a wrapped *Error: the op chain, then its code and message once
	}
	s := fmt.Sprintf("%s: %s: %s", e.Op, e.Code, e.Message)
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// OpChain lists the ops err crossed, outermost first.
func OpChain(err error) []string {
	var ops []string
	for ce := (*Error)(nil); errors.As(err, &ce); err = ce.Err {
		ops = append(ops, ce.Op)
	}
	return ops
}

func (e *Error) Unwrap() error { return e.Err }

// E builds a client-facing error.
func E(op string, code Code, msg string) *Error {
	return &Error{Op: op, Code: code, Message: msg}
}

// Internal wraps a failure for op. An unexpected one becomes INTERNAL_ERROR (clients see only
// "Internal server error") — unless the store classified the cause as an outage (StoreOutage),
// which becomes STORE_UNAVAILABLE; an *Error keeps its code, message and details and gains op
// in its chain, so a log line says every layer it crossed ("core.States.Put: redisstore.MutateState: …").
func Internal(op string, err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return &Error{Op: op, Code: ce.Code, Message: ce.Message, Details: ce.Details, Err: ce}
	}
	var reset StoreReset
	if errors.As(err, &reset) && reset.StoreWasReset() {
		return &Error{Op: op, Code: CodeStoreReset, Message: MsgStoreReset, Err: err}
	}
	var outage StoreOutage
	if errors.As(err, &outage) && outage.StoreUnavailable() {
		return &Error{Op: op, Code: CodeStoreUnavailable, Message: MsgStoreUnavailable, Err: err}
	}
	return &Error{Op: op, Code: CodeInternal, Message: MsgInternal, Err: err}
}

// StoreOutage is implemented by store errors that mean the store is unreachable or failing
// over (the store decides which errors those are; this is the one place they get a code).
type StoreOutage interface {
	error
	StoreUnavailable() bool
}

// StoreReset is implemented by store errors that mean the store lost its data under this
// server (see CodeStoreReset).
type StoreReset interface {
	error
	StoreWasReset() bool
}

// RetryAfterSeconds is what a client is told to wait before retrying STORE_UNAVAILABLE: a
// Redis failover or restart usually completes within a few seconds.
const RetryAfterSeconds = 1

// ErrorOf returns err as an *Error (the outermost one in its chain), wrapping anything else
// as internal.
func ErrorOf(err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	return Internal("unknown", err)
}

// Retryable says whether the same request may succeed if simply sent again later.
func (c Code) Retryable() bool {
	switch c {
	case CodeRateLimited, CodeInternal, CodeServiceUnavailable, CodeStoreUnavailable, CodeIdempotencyInProgress:
		return true
	case CodeLeaseConflict: // the holder releases or its lease expires: waiting helps
		return true
	}
	return false
}

// IsCode reports whether err is an *Error with the given code.
func IsCode(err error, code Code) bool {
	var ce *Error
	return errors.As(err, &ce) && ce.Code == code
}

// WireError is the error object both faces send: v1's {code, message} plus retryable and,
// where there is more to say, details.
type WireError struct {
	Code      Code   `json:"code"`
	Message   string `json:"message"`
	Retryable bool   `json:"retryable"`
	Details   any    `json:"details,omitempty"`
}

// WireErrorOf turns err into the wire error object.
func WireErrorOf(err error) WireError {
	ce := ErrorOf(err)
	return WireError{Code: ce.Code, Message: ce.Message, Retryable: ce.Code.Retryable(), Details: ce.Details}
}

// ProductVersion is the AgentState v1 version this server is wire-compatible with.
const ProductVersion = "0.1.4"
