package core

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
)

// The claims log is a per-project hash chain: entry_hash = SHA-256(prev_hash || canonical
// entry bytes), hex. This file holds everything needed to check it, and nothing that needs a
// server or a store, so the offline verifier (cmd/verify) shares it with the server.

// GenesisHash is the prev_hash of a log's first entry.
var GenesisHash = strings.Repeat("0", 64)

// Log entry types.
const (
	LogClaimCreated  = "claim.created"
	LogClaimVerified = "claim.verified"
)

// ClaimLogEntry is one link of the chain. It commits to an immutable object, the claim as
// created (ClaimContent) or a verification run, by its hash: the log can be published or
// bundled without revealing other claims.
type ClaimLogEntry struct {
	Seq         int64  `json:"seq" jsonschema_description:"1 for the project's first entry, +1 per entry."`
	Type        string `json:"type" jsonschema:"enum=claim.created,enum=claim.verified"`
	ClaimID     string `json:"claim_id"`
	RunID       string `json:"run_id,omitempty"`
	At          int64  `json:"at"`
	ContentHash string `json:"content_hash" jsonschema_description:"SHA-256 hex of the claim's immutable part or the run, as the server serialises it."`
	PrevHash    string `json:"prev_hash"`
	Hash        string `json:"entry_hash,omitempty" jsonschema_description:"SHA-256 hex of prev_hash followed by the entry's canonical bytes."`
}

// Canonical is the entry's hashed form: the compact JSON of its fields in declaration order,
// without entry_hash.
func (e ClaimLogEntry) Canonical() ([]byte, error) {
	e.Hash = ""
	return json.Marshal(e)
}

// ContentHash is the hash an entry records for a claim's content or a run.
func ContentHash(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	return SHA256Hex(b), nil
}

// ComputeHash returns the entry's hash from its prev_hash and canonical bytes.
func (e ClaimLogEntry) ComputeHash() (string, error) {
	b, err := e.Canonical()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(append([]byte(e.PrevHash), b...))
	return hex.EncodeToString(sum[:]), nil
}

// Checkpoint is a signed statement of a log's size and head.
type Checkpoint struct {
	ProjectID string `json:"project_id"`
	Size      int64  `json:"size" jsonschema_description:"Number of entries; the head is entry size."`
	HeadHash  string `json:"head_hash" jsonschema_description:"entry_hash of the last entry (the genesis hash for an empty log)."`
	At        int64  `json:"at"`
	Algorithm string `json:"algorithm" jsonschema:"enum=Ed25519"`
	KeyID     string `json:"key_id"`
	Signature string `json:"signature" jsonschema_description:"Base64 Ed25519 signature of the checkpoint message (see docs)."`
}

// Message is the exact byte string a checkpoint signs.
func (c Checkpoint) Message() []byte {
	return fmt.Appendf(nil, "agentstate-claimlog-checkpoint/v1\n%s\n%d\n%s\n%d", c.ProjectID, c.Size, c.HeadHash, c.At)
}

// SigningKey is the public half of the server's checkpoint key, as published.
type SigningKey struct {
	KeyID     string `json:"key_id"`
	Algorithm string `json:"algorithm" jsonschema:"enum=Ed25519"`
	PublicKey string `json:"public_key" jsonschema_description:"Base64 of the 32-byte Ed25519 public key."`
}

// Signer signs checkpoints.
type Signer struct {
	priv ed25519.PrivateKey
	pub  SigningKey
}

// NewSigner builds a signer from a 32-byte Ed25519 seed.
func NewSigner(seed []byte) (*Signer, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("signing key seed must be %d bytes, got %d", ed25519.SeedSize, len(seed))
	}
	priv := ed25519.NewKeyFromSeed(seed)
	pub := priv.Public().(ed25519.PublicKey)
	return &Signer{priv: priv, pub: SigningKey{KeyID: keyID(pub), Algorithm: "Ed25519",
		PublicKey: base64.StdEncoding.EncodeToString(pub)}}, nil
}

func keyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// PublicKey is what /.well-known/agentstate-signing-key publishes.
func (s *Signer) PublicKey() SigningKey { return s.pub }

// Sign fills in the checkpoint's algorithm, key id and signature.
func (s *Signer) Sign(c Checkpoint) Checkpoint {
	c.Algorithm, c.KeyID = "Ed25519", s.pub.KeyID
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(s.priv, c.Message()))
	return c
}

// LogExport is a whole log with a checkpoint over it: what the offline verifier checks.
type LogExport struct {
	Entries    []ClaimLogEntry `json:"entries"`
	Checkpoint Checkpoint      `json:"checkpoint"`
	PublicKey  SigningKey      `json:"public_key"`
}

// ClaimBundle is the portable proof of one claim: the claim, its runs, the log from the claim's
// creation to the head, and a checkpoint over that head.
type ClaimBundle struct {
	Claim      Claim             `json:"claim"`
	Runs       []VerificationRun `json:"runs"`
	Entries    []ClaimLogEntry   `json:"entries"`
	Checkpoint Checkpoint        `json:"checkpoint"`
	PublicKey  SigningKey        `json:"public_key"`
}

// VerifyFailure names the first thing that did not verify.
type VerifyFailure struct {
	Seq    int64 // the log entry at fault; 0 when the fault is not one entry (checkpoint, claim)
	Reason string
}

func (f *VerifyFailure) Error() string {
	if f.Seq == 0 {
		return f.Reason
	}
	return fmt.Sprintf("entry %d: %s", f.Seq, f.Reason)
}

func fail(seq int64, format string, a ...any) *VerifyFailure {
	return &VerifyFailure{Seq: seq, Reason: fmt.Sprintf(format, a...)}
}

// VerifyLog checks a run of consecutive entries and the checkpoint over its head. With fromGenesis
// the first entry must be entry 1; otherwise its prev_hash is trusted as the anchor, and the
// signed head vouches for everything after it. trusted, when set, must match the key that signed.
func VerifyLog(entries []ClaimLogEntry, cp Checkpoint, pk SigningKey, fromGenesis bool, trusted string) error {
	pub, err := base64.StdEncoding.DecodeString(pk.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize || pk.Algorithm != "Ed25519" {
		return fail(0, "public key is not a base64 Ed25519 key")
	}
	if keyID(pub) != pk.KeyID || cp.KeyID != pk.KeyID {
		return fail(0, "checkpoint key id %q does not match the public key", cp.KeyID)
	}
	if trusted != "" && trusted != pk.KeyID {
		return fail(0, "signed by key %s, not the trusted key %s", pk.KeyID, trusted)
	}
	sig, err := base64.StdEncoding.DecodeString(cp.Signature)
	if err != nil || !ed25519.Verify(pub, cp.Message(), sig) {
		return fail(0, "checkpoint signature does not verify")
	}
	prev, next := GenesisHash, int64(1)
	if !fromGenesis && len(entries) > 0 {
		prev, next = entries[0].PrevHash, entries[0].Seq
	}
	for _, e := range entries {
		if e.Seq != next {
			return fail(e.Seq, "expected entry %d here: an entry is missing or out of order", next)
		}
		if e.PrevHash != prev {
			return fail(e.Seq, "prev_hash does not match the previous entry's hash")
		}
		h, err := e.ComputeHash()
		if err != nil {
			return fail(e.Seq, "%v", err)
		}
		if h != e.Hash {
			return fail(e.Seq, "entry_hash does not match its contents (changed after it was written)")
		}
		prev, next = e.Hash, e.Seq+1
	}
	if next-1 != cp.Size || prev != cp.HeadHash {
		return fail(next-1, "the log ends at entry %d (%.12s…) but the signed checkpoint says %d (%.12s…): entries were removed or added",
			next-1, prev, cp.Size, cp.HeadHash)
	}
	return nil
}

// VerifyBundle checks a claim bundle: the chain and checkpoint, then that the claim and every
// run are exactly what the log committed to, and that the claim's status follows its runs.
func VerifyBundle(b ClaimBundle, trusted string) error {
	if err := VerifyLog(b.Entries, b.Checkpoint, b.PublicKey, false, trusted); err != nil {
		return err
	}
	want := map[string]string{}
	for _, e := range b.Entries {
		if e.ClaimID != b.Claim.ID {
			continue
		}
		switch e.Type {
		case LogClaimCreated:
			want["claim"] = e.ContentHash
			if e.Seq != b.Claim.LogSeq {
				return fail(e.Seq, "the claim says it was logged at entry %d", b.Claim.LogSeq)
			}
		case LogClaimVerified:
			want["run:"+e.RunID] = e.ContentHash
		}
	}
	if want["claim"] == "" {
		return fail(0, "the bundle's entries do not include claim %s's creation", b.Claim.ID)
	}
	if got, _ := ContentHash(b.Claim.Content()); got != want["claim"] {
		return fail(b.Claim.LogSeq, "claim %s differs from what the log recorded", b.Claim.ID)
	}
	status := ClaimPending
	for _, r := range b.Runs {
		if got, _ := ContentHash(r); got != want["run:"+r.ID] {
			return fail(0, "verification run %s differs from what the log recorded (or is not in it)", r.ID)
		}
		delete(want, "run:"+r.ID)
		status = r.Status
	}
	for k := range want {
		if k != "claim" {
			return fail(0, "the log records %s, which the bundle's runs leave out", k)
		}
	}
	if b.Claim.Status != status {
		return fail(0, "claim status %q does not follow from its runs (%q)", b.Claim.Status, status)
	}
	return nil
}
