package core

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"math/big"
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewID returns a 21-character nanoid, v1's id format.
func NewID() string { return nanoid(21) }

// NewShortID returns a 16-character nanoid (v1's generated request ids).
func NewShortID() string { return nanoid(16) }

// nanoidAlphabet is nanoid's default URL-safe alphabet. It has 64 characters, so the low six
// bits of a random byte pick one uniformly.
const nanoidAlphabet = "_-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"

// nanoid is go-nanoid's New(n) (n <= 21) in one allocation instead of three: it runs twice
// per write (the request id and the event id).
func nanoid(n int) string {
	var buf [21]byte
	b := buf[:n]
	_, _ = rand.Read(b) // crypto/rand.Read does not fail; it crashes the program if it cannot read
	for i, c := range b {
		b[i] = nanoidAlphabet[c&63]
	}
	return string(b)
}

// RandomBase62 returns n cryptographically random base62 characters.
func RandomBase62(n int) string {
	out := make([]byte, n)
	max := big.NewInt(int64(len(base62)))
	for i := range out {
		v, err := rand.Int(rand.Reader, max)
		if err != nil {
			panic("crypto/rand failed: " + err.Error())
		}
		out[i] = base62[v.Int64()]
	}
	return string(out)
}

// SHA256Hex is how credentials are stored and how idempotency fingerprints are taken.
func SHA256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	var out [2 * sha256.Size]byte // on the stack: one allocation (the string), not two
	return string(hex.AppendEncode(out[:0], sum[:]))
}
