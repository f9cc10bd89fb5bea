package redisstore

import (
	_ "embed"
	"strconv"
	"strings"

	"github.com/agentstate/agentstate-go/core"
)

// A deferred admission (core/admission.go) runs inside the write's script (admission_lib.lua,
// prepended to mutate_state.lua and the lease transitions): its keys go last, its spec in one
// argument, and its count comes back at the end of the reply.

//go:embed scripts/admission_lib.lua
var admissionLibLua string

// admissionKeys is how many keys adm adds to a write: none without one.
func admissionKeys(adm *core.AdmissionCheck) int {
	if adm == nil {
		return 0
	}
	n := 1 + len(adm.Counters)
	if checksRevokedSet(adm) {
		n++
	}
	if adm.Session != "" {
		n++
	}
	return n
}

// checksRevokedSet reports whether the script looks adm's lineage up in the revoked set: for a
// token, whose minting key and ancestors revoke it too. An API key's record gets its revoked_at
// in the same MULTI as its id goes into the set (RevokeAPIKey), so the record, which the
// script reads anyway, says it.
func checksRevokedSet(adm *core.AdmissionCheck) bool { return adm.Kind == core.KindCapabilityToken }

// appendAdmission adds adm's keys to a write's (the credential's record, for a token the
// revoked set, the session it names, its rate counters) and returns its spec,
// ":<limit>:<expiry>:<flags>:<idle>:<lineage>";
// "" without one.
func appendAdmission(keys []string, project string, adm *core.AdmissionCheck) ([]string, string) {
	if adm == nil {
		return keys, ""
	}
	keys = append(keys, credentialRecordKey(project, adm.CredentialID, adm.Kind))
	lineage := ""
	if checksRevokedSet(adm) {
		keys = append(keys, revokedTokensKey(project))
		lineage = strings.Join(adm.Lineage, ",") // ids are nanoids: no commas
	}
	if adm.Session != "" {
		keys = append(keys, mcpSessionKey(project, adm.Session))
	}
	var b strings.Builder
	b.WriteByte(':')
	b.WriteString(strconv.FormatInt(adm.Limit, 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatInt((2 * core.RateWindow).Milliseconds(), 10))
	b.WriteByte(':')
	for _, c := range adm.Counters {
		keys = append(keys, rateLimitKey(project, c.ID, adm.Window))
		if c.SetExpiry {
			b.WriteByte('1')
		} else {
			b.WriteByte('0')
		}
	}
	b.WriteByte(':')
	if adm.Session != "" {
		b.WriteString(strconv.FormatInt(adm.SessionIdle.Milliseconds(), 10))
	}
	b.WriteByte(':')
	b.WriteString(lineage)
	return keys, b.String()
}

// admissionReply records in adm what the script's admission found and returns the reply
// without the count it appended; ErrNotAdmitted when it refused the write.
func admissionReply(adm *core.AdmissionCheck, res []any) ([]any, error) {
	switch res[0] {
	case "NOADMIT":
		adm.Outcome = core.AdmissionRefused
		return nil, core.ErrNotAdmitted
	case "NOSESSION":
		adm.Outcome = core.AdmissionNoSession
		return nil, core.ErrNotAdmitted
	case "LIMITED":
		adm.Outcome, adm.Count = core.AdmissionLimited, res[1].(int64)
		return nil, core.ErrNotAdmitted
	case "ERR":
		if res[1] == "STORE_RESET" { // answered without the admission's count (the store counts as reset)
			return res, nil
		}
	}
	n := len(res) - 1
	adm.Outcome, adm.Count = core.AdmissionPassed, res[n].(int64)
	return res[:n], nil
}
