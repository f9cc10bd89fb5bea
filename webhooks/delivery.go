package webhooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/agentstate/agentstate-go/core"
)

// webhookURLMessage is v1's wording (compat-v1.md §14); clients may match on it.
const webhookURLMessage = "Webhook url must be https and must not point at a private, loopback, link-local or metadata address"

// Webhook delivery defaults from compat-v1.md §14.
const (
	webhookUserAgent      = "AgentState-Webhooks/1.0"
	webhookAttemptTimeout = 10 * time.Second
	// A receiver's reply is never read; draining a little lets the connection be reused
	// without letting a hostile endpoint stream to us forever.
	webhookDrainLimit = 64 << 10
)

type webhookAddrClass int

const (
	webhookAddrPublic webhookAddrClass = iota
	webhookAddrLoopback
	webhookAddrBlocked
)

// Ranges refused beyond what netip's predicates cover. 0/8 and 100.64/10 are included
// because on common hosting they reach the machine itself or the provider's network.
var webhookExtraBlocked = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("255.255.255.255/32"),
}

// NAT64 embeds an IPv4 address in IPv6; on a NAT64 network it reaches that IPv4 address,
// so the embedded one is what must be judged.
var nat64Prefix = netip.MustParsePrefix("64:ff9b::/96")

var webhookMetadataHosts = map[string]bool{
	"metadata.google.internal": true,
	"metadata":                 true,
	"instance-data":            true, // AWS's resolvable alias for 169.254.169.254
}

func classifyWebhookAddr(a netip.Addr) webhookAddrClass {
	a = a.Unmap() // ::ffff:127.0.0.1 would otherwise slip past the IPv4 checks
	if a.Is6() && nat64Prefix.Contains(a) {
		b := a.As16()
		a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	switch {
	case !a.IsValid():
		return webhookAddrBlocked
	case a.IsLoopback():
		return webhookAddrLoopback
	case a.IsPrivate(), a.IsLinkLocalUnicast(), a.IsLinkLocalMulticast(), a.IsInterfaceLocalMulticast(),
		a.IsMulticast(), a.IsUnspecified():
		// 169.254.169.254 and fd00:ec2::254 (the metadata services) fall in link-local and fc00::/7.
		return webhookAddrBlocked
	}
	for _, p := range webhookExtraBlocked {
		if p.Contains(a) {
			return webhookAddrBlocked
		}
	}
	return webhookAddrPublic
}

// looksNumericHost catches hosts such as "2130706433" or "0x7f.1" that some resolvers and
// libraries treat as IPv4 literals although net/netip does not parse them.
func looksNumericHost(host string) bool {
	for _, label := range strings.Split(host, ".") {
		if label == "" {
			return false
		}
		digits := label
		if strings.HasPrefix(label, "0x") {
			digits = label[2:]
			if strings.Trim(digits, "0123456789abcdef") != "" {
				return false
			}
			continue
		}
		if strings.Trim(digits, "0123456789") != "" {
			return false
		}
	}
	return true
}

func classifyWebhookHost(host string) webhookAddrClass {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == "" {
		return webhookAddrBlocked
	}
	if a, err := netip.ParseAddr(host); err == nil {
		return classifyWebhookAddr(a)
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return webhookAddrLoopback
	}
	if webhookMetadataHosts[host] || looksNumericHost(host) {
		return webhookAddrBlocked
	}
	// A public-looking name can still resolve to a private address; webhookDialer checks
	// the address actually dialled.
	return webhookAddrPublic
}

// ValidateWebhookURL refuses URLs a webhook must not be sent to (SSRF guard, compat-v1.md §14).
// allowLoopback exists for local development and tests, where the receiver runs on this machine.
func ValidateURL(raw string, allowLoopback bool) error {
	if !SafeOutboundURL(raw, allowLoopback) {
		return core.E("webhooks.ValidateURL", core.CodeBadRequest, webhookURLMessage)
	}
	return nil
}

// SafeOutboundURL is the SSRF guard for any URL the server itself fetches or posts to (webhook
// targets, OAuth client metadata documents): https to a public address, or with allowLoopback
// http(s) on this machine. NewGuardedClient checks the address actually dialled as well.
func SafeOutboundURL(raw string, allowLoopback bool) bool {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || u.Opaque != "" {
		return false
	}
	class := classifyWebhookHost(u.Hostname())
	switch {
	case class == webhookAddrBlocked:
		return false
	case class == webhookAddrLoopback && !allowLoopback:
		return false
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return true
	case "http":
		// Plain http only for a local receiver: anything else would send the signed body
		// and its signature in clear text across networks.
		return allowLoopback && class == webhookAddrLoopback
	}
	return false
}

// webhookDialer re-checks the address at connect time: a name that passed ValidateWebhookURL
// may later resolve to a private address (DNS rebinding), and redirects are refused anyway.
func webhookDialer(allowLoopback bool) *net.Dialer {
	return &net.Dialer{
		Timeout:   webhookAttemptTimeout,
		KeepAlive: 30 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("webhook dial to %q refused: %w", address, err)
			}
			switch classifyWebhookAddr(ap.Addr()) {
			case webhookAddrPublic:
				return nil
			case webhookAddrLoopback:
				if allowLoopback {
					return nil
				}
			}
			return fmt.Errorf("webhook dial to %s refused: private, loopback, link-local or metadata address", address)
		},
	}
}

// SignWebhook is the v1 signature: lowercase hex HMAC-SHA256(secret, "<timestamp>.<body>").
// The timestamp is signed so a captured delivery cannot be replayed later under a new one.
func SignWebhook(secret string, timestampMs int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(timestampMs, 10)))
	m.Write([]byte{'.'})
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Deliverer makes one signed delivery attempt; the outbox (Service) decides when to try again.
type Deliverer struct {
	Client  *http.Client
	Timeout time.Duration // per attempt
}

// NewDeliverer returns a deliverer with v1's 10 s per attempt, through a client that refuses
// internal addresses and does not follow redirects.
func NewDeliverer(allowLoopback bool) *Deliverer {
	return &Deliverer{Client: NewGuardedClient(allowLoopback), Timeout: webhookAttemptTimeout}
}

// NewGuardedClient is an HTTP client for URLs that passed SafeOutboundURL: it re-checks every
// dialled address (DNS rebinding), uses no proxy and follows no redirect.
func NewGuardedClient(allowLoopback bool) *http.Client {
	d := webhookDialer(allowLoopback)
	return &http.Client{
		Transport: &http.Transport{
			// No proxy: the dial guard must see the receiver's address, not a proxy's.
			Proxy:                 nil,
			DialContext:           d.DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          50,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   webhookAttemptTimeout,
			ResponseHeaderTimeout: webhookAttemptTimeout,
		},
		// A redirect could point anywhere, including an internal host the URL check never saw;
		// the 3xx counts as a failed attempt.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

type webhookPayload struct {
	Event     string `json:"event"`
	Timestamp int64  `json:"timestamp"`
	Data      any    `json:"data"`
}

// payload is the body of an event: built once, when the event is queued, so that every
// attempt sends the same bytes under the same timestamp and signature.
func payload(event string, ts int64, data any) ([]byte, error) {
	return json.Marshal(webhookPayload{Event: event, Timestamp: ts, Data: data})
}

// Send posts d to url once, signed with secret. Any reply outside 2xx, a redirect included,
// and any transport error is a failure.
func (d *Deliverer) Send(ctx context.Context, url, secret string, dl Delivery) error {
	timeout := d.Timeout
	if timeout <= 0 {
		timeout = webhookAttemptTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(dl.Body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-AgentState-Signature", SignWebhook(secret, dl.Timestamp, dl.Body))
	req.Header.Set("X-AgentState-Timestamp", strconv.FormatInt(dl.Timestamp, 10))
	req.Header.Set("X-AgentState-Delivery", dl.ID)
	req.Header.Set("User-Agent", webhookUserAgent)
	resp, err := d.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, webhookDrainLimit))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("status %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	return nil
}
