// Command verify checks a claims-log export or a claim bundle offline: no server, no Redis.
//
//	curl -s $B/api/v1/claims/log/export -H "Authorization: Bearer $K" > log.json
//	curl -s $B/.well-known/agentstate-signing-key        # {"key_id": …}: note it once
//	go run ./cmd/verify -key <key id> [-since old-checkpoint.json] log.json
//
// It prints OK and exits 0, or names the first entry (or object) that does not verify and
// exits 1. -key pins the signing key id you trust. Without -key or -since it says NOT VERIFIED
// and exits 1 even when the file is consistent, since a file re-signed with someone else's key
// is consistent too; -trust-file-key accepts such a file with a warning.
// A checkpoint is signed over whatever the store holds when it is asked for, so keep earlier
// checkpoints: -since checks that the log still contains the head one of them vouched for,
// which is what catches a log cut short and re-signed.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/agentstate/agentstate-go/core"
	"github.com/agentstate/agentstate-go/internal/cli"
)

const usage = "usage: verify (-key KEYID | -since CHECKPOINT | -trust-file-key) FILE   (a claim bundle or a claims-log export; - for stdin)"

// untrusted is why a file checked only against the key it carries proves nothing by itself.
const untrusted = "the file is consistent, but its checkpoint is signed by the key the file itself names: " +
	"anyone who can edit the file can re-sign it with a key of their own. Pass -key with the server's key id " +
	"(GET /.well-known/agentstate-signing-key) or -since with a checkpoint you kept; -trust-file-key accepts it anyway"

func main() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }

// run is the command: 0 verified, 1 a check failed (or nothing pins the key), 2 bad usage or input.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	key := fs.String("key", "", "the signing key id you trust (GET /.well-known/agentstate-signing-key)")
	since := fs.String("since", "", "an earlier checkpoint (JSON) the log must still extend")
	trustFile := fs.Bool("trust-file-key", false, "without -key or -since, accept the key the file names (proves consistency only)")
	if err := cli.Parse(fs, args, usage, stdout, stderr); err != nil {
		return cli.Exit("verify", err, stderr)
	}
	if fs.NArg() != 1 {
		return cli.Exit("verify", cli.Usage(usage), stderr)
	}
	in := stdin
	if name := fs.Arg(0); name != "-" {
		f, err := os.Open(name)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 2
		}
		defer f.Close()
		in = f
	}
	var earlier *core.Checkpoint
	if *since != "" {
		b, err := os.ReadFile(*since)
		if err == nil {
			earlier = &core.Checkpoint{}
			err = json.Unmarshal(b, earlier)
		}
		if err != nil {
			fmt.Fprintln(stderr, "-since:", err)
			return 2
		}
	}
	msg, err := verify(in, *key, earlier)
	if err != nil {
		fmt.Fprintln(stdout, "FAIL:", err)
		return 1
	}
	if *key == "" && earlier == nil {
		if !*trustFile {
			fmt.Fprintln(stdout, "NOT VERIFIED:", untrusted+".")
			return 1
		}
		fmt.Fprintln(stderr, "warning:", untrusted+".")
	}
	fmt.Fprintln(stdout, "OK:", msg)
	return 0
}

// verify reads a bundle (it has a "claim") or an export and checks it.
func verify(r io.Reader, trustedKey string, since *core.Checkpoint) (string, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return "", err
	}
	var probe struct {
		Claim json.RawMessage `json:"claim"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return "", fmt.Errorf("not JSON: %w", err)
	}
	if probe.Claim != nil {
		var b core.ClaimBundle
		if err := json.Unmarshal(raw, &b); err != nil {
			return "", err
		}
		if err := core.VerifyBundle(b, trustedKey); err != nil {
			return "", err
		}
		return fmt.Sprintf("claim %s (%s, %d runs) is in the log at entry %d under a valid checkpoint of %d entries signed by %s",
			b.Claim.ID, b.Claim.Status, len(b.Runs), b.Claim.LogSeq, b.Checkpoint.Size, b.PublicKey.KeyID), nil
	}
	var ex core.LogExport
	if err := json.Unmarshal(raw, &ex); err != nil {
		return "", err
	}
	if ex.Checkpoint.Signature == "" {
		return "", errors.New("no checkpoint: not a claims-log export or bundle")
	}
	if err := core.VerifyLog(ex.Entries, ex.Checkpoint, ex.PublicKey, true, trustedKey); err != nil {
		return "", err
	}
	if since != nil && since.Size > 0 {
		if since.Size > int64(len(ex.Entries)) || ex.Entries[since.Size-1].Hash != since.HeadHash {
			return "", &core.VerifyFailure{Seq: since.Size, Reason: "is not the entry the earlier checkpoint signed: the log was rewritten or cut short"}
		}
	}
	return fmt.Sprintf("%d entries chain from genesis to head %.16s… under a checkpoint signed by %s",
		len(ex.Entries), ex.Checkpoint.HeadHash, ex.PublicKey.KeyID), nil
}
