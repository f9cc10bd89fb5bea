package oauth

import (
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentstate/agentstate-go/core"
)

var (
	//go:embed consent.html
	consentHTML string
	//go:embed consent.css
	consentCSS string

	consentPage = template.Must(template.New("consent").Parse(consentHTML))
	// The page's only style is inline and allowed by its hash: the page loads nothing at all
	// from anywhere, so a consent screen cannot be restyled or scripted by a third party.
	consentCSSHash = func() string {
		h := sha256.Sum256([]byte(consentCSS))
		return "'sha256-" + base64.StdEncoding.EncodeToString(h[:]) + "'"
	}()
)

// The CSRF cookie of the consent form (double submit: the form echoes it).
const csrfCookie = "as_oauth_csrf"

// maxFormBytes bounds the consent form and token request bodies.
const maxFormBytes = 64 << 10

// PKCE code_challenge / code_verifier: 43..128 unreserved characters (RFC 7636 §4.1).
var pkceRe = regexp.MustCompile(`^[A-Za-z0-9._~-]{43,128}$`)

// expiryChoices are the grant lifetimes the consent page offers; refresh tokens never outlive
// the grant, and access tokens never outlive it either.
var expiryChoices = []expiryOption{
	{"1d", "1 day", 24 * time.Hour}, {"7d", "7 days", 7 * 24 * time.Hour}, {"30d", "30 days", 30 * 24 * time.Hour},
	{"90d", "90 days", 90 * 24 * time.Hour}, {"never", "No expiry (until revoked)", 0},
}

type expiryOption struct {
	Value, Label string
	D            time.Duration
}

// authRequest is an authorization request (RFC 6749 §4.1.1 with PKCE and RFC 8707 resource),
// carried from the GET to the consent form's POST in hidden fields and validated again there.
type authRequest struct {
	ClientID, RedirectURI, State, Challenge, Resource, Nonce string
	RedirectGiven                                            bool
	Scopes                                                   []string
}

// parseAuthRequest validates an authorization request. The first error is shown on our own
// page (the client or its redirect URI is not to be trusted, so nothing is redirected there);
// the second is sent back to the client's redirect URI.
func (s *Service) parseAuthRequest(r *http.Request, v url.Values) (*authRequest, *Client, *oauthError, *oauthError) {
	c, oe := s.lookupClient(r.Context(), v.Get("client_id"))
	if oe != nil {
		return nil, nil, oe, nil
	}
	req := &authRequest{ClientID: c.ID, RedirectURI: v.Get("redirect_uri"), State: v.Get("state"),
		Challenge: v.Get("code_challenge"), Resource: v.Get("resource"), Nonce: v.Get("nonce"), RedirectGiven: v.Get("redirect_uri") != ""}
	if !req.RedirectGiven && len(c.RedirectURIs) == 1 {
		req.RedirectURI = c.RedirectURIs[0]
	}
	if !redirectMatches(c.RedirectURIs, req.RedirectURI) {
		return nil, nil, invalidRequest(core.MsgOAuthRedirectMismatch), nil
	}
	if v.Get("response_type") != "code" {
		return req, c, nil, fail(http.StatusBadRequest, "unsupported_response_type", core.MsgOAuthResponseType)
	}
	if v.Get("code_challenge_method") != "S256" || !pkceRe.MatchString(req.Challenge) {
		return req, c, nil, invalidRequest(core.MsgOAuthPKCERequired)
	}
	if req.Resource == "" {
		req.Resource = s.resource(r)
	} else if req.Resource != s.resource(r) {
		return req, c, nil, fail(http.StatusBadRequest, "invalid_target", core.MsgOAuthResourceMismatch)
	}
	scope := v.Get("scope")
	if scope == "" {
		scope = c.Scope
	}
	scopes, serr := parseScope(scope)
	if serr != nil {
		return req, c, nil, fail(http.StatusBadRequest, "invalid_scope", serr.Description)
	}
	if scopes == nil {
		scopes = core.CapabilityScopes
	}
	req.Scopes = scopes
	return req, c, nil, nil
}

// Authorize serves GET /api/oauth/authorize: the consent page.
func (s *Service) Authorize(w http.ResponseWriter, r *http.Request) {
	req, c, local, remote := s.parseAuthRequest(r, r.URL.Query())
	switch {
	case local != nil:
		s.errorPage(w, local)
	case remote != nil:
		s.redirectError(w, r, req, remote)
	default:
		token := core.RandomBase62(32)
		http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: token, Path: "/api/oauth", HttpOnly: true,
			Secure: strings.HasPrefix(s.issuer(r), "https://"), SameSite: http.SameSiteStrictMode, MaxAge: int(CodeTTL.Seconds())})
		s.renderConsent(w, http.StatusOK, req, c, token, "", consentForm{Scopes: req.Scopes, Expiry: "30d"})
	}
}

// consentForm is what the person chose; it is re-shown when the decision fails.
type consentForm struct {
	Scopes    []string
	Resources string
	AgentID   string
	Expiry    string
	MaxDepth  int
}

// Decision serves POST /api/oauth/authorize/decision: the person proves who they are with an
// API key of the project and approves a grant that the key mints under the capability-token
// rules, so it is never wider than the key on any axis; or denies.
func (s *Service) Decision(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.errorPage(w, invalidRequest("The form could not be read"))
		return
	}
	f := r.PostForm
	cookie, err := r.Cookie(csrfCookie)
	if err != nil || cookie.Value == "" || subtle.ConstantTimeCompare([]byte(cookie.Value), []byte(f.Get("csrf"))) != 1 {
		s.errorPage(w, fail(http.StatusForbidden, "access_denied", core.MsgOAuthCSRF))
		return
	}
	// API keys are far too long to guess, but a form that checks them is still not a free oracle.
	if err := s.limitIP(r.Context(), r, "consent", s.TokenPerMinute, time.Minute); err != nil {
		oe, ok := err.(*oauthError)
		if !ok {
			oe = fail(http.StatusServiceUnavailable, "temporarily_unavailable", core.MsgStoreUnavailable)
		}
		s.errorPage(w, oe)
		return
	}
	req, c, local, remote := s.parseAuthRequest(r, f)
	switch {
	case local != nil:
		s.errorPage(w, local)
		return
	case remote != nil:
		s.redirectError(w, r, req, remote)
		return
	}
	if f.Get("action") != "approve" {
		s.redirectError(w, r, req, fail(http.StatusForbidden, "access_denied", core.MsgOAuthDenied))
		return
	}
	form := consentForm{Scopes: f["grant_scope"], Resources: f.Get("resources"), AgentID: f.Get("agent_id"), Expiry: f.Get("expires")}
	form.MaxDepth, _ = strconv.Atoi(f.Get("max_depth"))
	again := func(status int, msg string) {
		s.renderConsent(w, status, req, c, cookie.Value, msg, form)
	}
	ctx := r.Context()
	p, err := s.Auth.Authenticate(ctx, strings.TrimSpace(f.Get("api_key")))
	if err != nil || p.Kind != core.KindAPIKey {
		if err != nil && !core.IsCode(err, core.CodeUnauthorized) {
			again(http.StatusServiceUnavailable, core.WireErrorOf(err).Message)
			return
		}
		again(http.StatusUnauthorized, core.MsgOAuthConsentKey)
		return
	}
	// The person may narrow what the client asked for, never add to it.
	for _, sc := range form.Scopes {
		if !slices.Contains(req.Scopes, sc) {
			again(http.StatusBadRequest, "The client did not ask for "+sc)
			return
		}
	}
	if len(form.Scopes) == 0 {
		again(http.StatusBadRequest, "Choose at least one scope, or deny")
		return
	}
	if form.MaxDepth < 0 || form.MaxDepth >= core.MaxDelegationDepth {
		again(http.StatusBadRequest, "Delegation depth must be 0.."+strconv.Itoa(core.MaxDelegationDepth-1))
		return
	}
	in := core.MintTokenRequest{Name: grantName(c.Name), Scopes: form.Scopes, AgentID: strings.TrimSpace(form.AgentID)}
	if fields := strings.FieldsFunc(form.Resources, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }); len(fields) > 0 {
		in.Resources = fields
	}
	depth := form.MaxDepth + 1 // the grant delegates one level to its access tokens
	in.MaxDepth = &depth
	choice := slices.IndexFunc(expiryChoices, func(e expiryOption) bool { return e.Value == form.Expiry })
	if choice < 0 {
		again(http.StatusBadRequest, "Choose an expiry")
		return
	}
	if d := expiryChoices[choice].D; d > 0 {
		exp := s.Clock.Now().Add(d).UnixMilli()
		in.ExpiresAt = &exp
	}
	grant, err := s.Keys.MintBound(ctx, p, in, req.Resource)
	if err != nil {
		ce := core.ErrorOf(err)
		status := http.StatusForbidden
		if ce.Code == core.CodeBadRequest {
			status = http.StatusBadRequest
		} else if ce.Code != core.CodeForbidden {
			status = http.StatusServiceUnavailable
		}
		again(status, ce.Message)
		return
	}
	code := projectToken("as_code_", p.ProjectID)
	rec := Code{Grant: grant.ID, ClientID: c.ID, RedirectURI: req.RedirectURI, RedirectGiven: req.RedirectGiven, Challenge: req.Challenge,
		Resource: req.Resource, Scope: strings.Join(grant.Scopes, " "), ExpiresAt: s.Clock.Now().Add(CodeTTL).UnixMilli()}
	if err := s.Store.PutCode(ctx, p.ProjectID, core.SHA256Hex([]byte(code)), rec, CodeTTL); err != nil {
		again(http.StatusServiceUnavailable, core.WireErrorOf(err).Message)
		return
	}
	s.redirect(w, r, req, url.Values{"code": {code}})
}

// redirect sends the authorization response to the client, with state and (RFC 9207) iss so
// the client can tell which server answered.
func (s *Service) redirect(w http.ResponseWriter, r *http.Request, req *authRequest, params url.Values) {
	u, _ := url.Parse(req.RedirectURI) // validated against the registration already
	q := u.Query()
	for k, v := range params {
		q[k] = v
	}
	if req.State != "" {
		q.Set("state", req.State)
	}
	q.Set("iss", s.issuer(r))
	u.RawQuery = q.Encode()
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, u.String(), http.StatusSeeOther)
}

func (s *Service) redirectError(w http.ResponseWriter, r *http.Request, req *authRequest, e *oauthError) {
	s.redirect(w, r, req, url.Values{"error": {e.Code}, "error_description": {e.Description}})
}

type consentData struct {
	CSS                                         template.CSS
	Client, ClientID, RedirectHost, Error, CSRF string
	Hidden                                      map[string]string
	Scopes                                      []scopeChoice
	Form                                        consentForm
	Expiries                                    []expiryChoice
}

type scopeChoice struct {
	Name    string
	Checked bool
}

type expiryChoice struct {
	Value, Label string
	Selected     bool
}

// pageHeaders are the consent and error pages' headers: nothing but the page's own style may
// load, no site may frame it (clickjacking), and the form may post only here and redirect only
// to the client's redirect URI (Chromium applies form-action to the redirect too).
func pageHeaders(w http.ResponseWriter, formTarget string) {
	h := w.Header()
	csp := "default-src 'none'; style-src " + consentCSSHash + "; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
	if formTarget != "" {
		csp += " " + formTarget
	}
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Content-Type", "text/html; charset=utf-8")
}

// redirectSource is the CSP source of a redirect URI: its origin, or its scheme for a
// private-use scheme.
func redirectSource(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	if u.Host == "" {
		return u.Scheme + ":"
	}
	return u.Scheme + "://" + u.Host
}

func (s *Service) renderConsent(w http.ResponseWriter, status int, req *authRequest, c *Client, csrf, msg string, form consentForm) {
	pageHeaders(w, redirectSource(req.RedirectURI))
	name := c.Name
	if name == "" {
		name = c.ID
	}
	d := consentData{CSS: template.CSS(consentCSS), Client: name, ClientID: c.ID, RedirectHost: redirectSource(req.RedirectURI), Error: msg, CSRF: csrf, Form: form,
		Hidden: map[string]string{"client_id": req.ClientID, "redirect_uri": redirectField(req), "state": req.State,
			"code_challenge": req.Challenge, "code_challenge_method": "S256", "response_type": "code",
			"resource": req.Resource, "scope": strings.Join(req.Scopes, " "), "nonce": req.Nonce}}
	for _, sc := range req.Scopes {
		d.Scopes = append(d.Scopes, scopeChoice{Name: sc, Checked: slices.Contains(form.Scopes, sc)})
	}
	for _, e := range expiryChoices {
		d.Expiries = append(d.Expiries, expiryChoice{Value: e.Value, Label: e.Label, Selected: e.Value == form.Expiry})
	}
	w.WriteHeader(status)
	_ = consentPage.ExecuteTemplate(w, "consent", d)
}

// redirectField is what the form carries as redirect_uri: empty when the request left it to the
// client's only registered one, so the decision knows the token request may omit it too.
func redirectField(req *authRequest) string {
	if req.RedirectGiven {
		return req.RedirectURI
	}
	return ""
}

func (s *Service) errorPage(w http.ResponseWriter, e *oauthError) {
	pageHeaders(w, "")
	w.WriteHeader(e.status)
	_ = consentPage.ExecuteTemplate(w, "error", struct {
		CSS               template.CSS
		Code, Description string
	}{template.CSS(consentCSS), e.Code, e.Description})
}

// parseScope reads a space-separated scope parameter: unique capability scopes; "" is nil.
func parseScope(scope string) ([]string, *oauthError) {
	fields := strings.Fields(scope)
	if len(fields) == 0 {
		return nil, nil
	}
	for i, sc := range fields {
		if !slices.Contains(core.CapabilityScopes, sc) || slices.Contains(fields[:i], sc) {
			return nil, fail(http.StatusBadRequest, "invalid_scope", core.MsgOAuthScopeInvalid+strings.Join(core.CapabilityScopes, " "))
		}
	}
	return fields, nil
}

// projectToken is a fresh one-time secret that names its project, so its record can live in
// (and be spent atomically within) the project's slot: <prefix><project>.<40 base62>.
func projectToken(prefix, project string) string {
	return prefix + project + "." + core.RandomBase62(40)
}

var projectTokenRe = regexp.MustCompile(`^([A-Za-z0-9_-]{1,64})\.[A-Za-z0-9]{40}$`)

// tokenProject returns the project a token of projectToken's form names.
func tokenProject(prefix, raw string) (string, bool) {
	rest, ok := strings.CutPrefix(raw, prefix)
	if !ok {
		return "", false
	}
	m := projectTokenRe.FindStringSubmatch(rest)
	if m == nil {
		return "", false
	}
	return m[1], true
}
