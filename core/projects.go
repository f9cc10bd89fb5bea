package core

import (
	"context"
	"crypto/subtle"
	"fmt"
	"unicode/utf8"
)

// CreateProjectRequest is the body of POST /api/v1/projects (admin).
type CreateProjectRequest struct {
	ID   string `json:"id,omitempty" jsonschema:"pattern=^[A-Za-z0-9_-]{1,64}$" jsonschema_description:"Project id (letters, digits, _ or -); generated when omitted."`
	Name string `json:"name" jsonschema:"minLength=1,maxLength=255"`
}

// ProjectWithKey is a new project and its first, full-access key (shown once).
type ProjectWithKey struct {
	Project Project `json:"project"`
	APIKey  APIKey  `json:"api_key"`
}

// ProjectList is GET /api/v1/projects.
type ProjectList struct {
	Data []Project `json:"data"`
}

// Admin checks the operator token that guards project management. With none configured every
// call is refused (v1's dashboard routes fail closed the same way).
func (a *Auth) Admin(raw string) error {
	if a.AdminToken == "" || subtle.ConstantTimeCompare([]byte(raw), []byte(a.AdminToken)) != 1 {
		return E("core.Auth.Admin", CodeUnauthorized, "Authentication required")
	}
	return nil
}

// CreateProject makes a project and its first key; an id in use is a 409.
func (a *Auth) CreateProject(ctx context.Context, in CreateProjectRequest) (ProjectWithKey, error) {
	const op = "core.Auth.CreateProject"
	if n := utf8.RuneCountInString(in.Name); n == 0 || n > MaxCredentialNameLen {
		return ProjectWithKey{}, BadRequest(op, "name", "name must be 1..255 characters")
	}
	if in.ID == "" {
		in.ID = NewID()
	}
	if !projectIDRe.MatchString(in.ID) {
		return ProjectWithKey{}, BadRequest(op, "id", "Project id must be 1..64 letters, digits, _ or -")
	}
	p := Project{ID: in.ID, Name: in.Name, CreatedAt: NowMs(a.clock)}
	created, err := a.store.CreateProject(ctx, p)
	if err != nil {
		return ProjectWithKey{}, Internal(op, err)
	}
	if !created {
		return ProjectWithKey{}, E(op, CodeConflict, "A project with this id already exists")
	}
	key, err := a.CreateProjectWithKey(ctx, p, "")
	if err != nil {
		return ProjectWithKey{}, err
	}
	return ProjectWithKey{Project: p, APIKey: key}, nil
}

// ListProjects lists every project, oldest first.
func (a *Auth) ListProjects(ctx context.Context) (ProjectList, error) {
	ps, err := a.store.ListProjects(ctx)
	if err != nil {
		return ProjectList{}, Internal("core.Auth.ListProjects", err)
	}
	return ProjectList{Data: ps}, nil
}

// DeleteProject removes a project: its credentials first, so nothing can use it while its
// data is purged, then every key of its data.
func (a *Auth) DeleteProject(ctx context.Context, id string) error {
	const op = "core.Auth.DeleteProject"
	found, err := a.store.DeleteProject(ctx, id)
	if err != nil {
		return Internal(op, err)
	}
	if !found {
		return E(op, CodeNotFound, "Project not found")
	}
	return nil
}

// MaxRetentionDays is v1's bound on retention_days.
const MaxRetentionDays = 3650

// UpdateProjectRequest is the body of PATCH /api/v1/projects/{id}.
type UpdateProjectRequest struct {
	RetentionDays *int `json:"retention_days" jsonschema:"minimum=1,maximum=3650" jsonschema_description:"Purge conversations not updated for this many days; null turns retention off."`
}

// SetRetention sets or clears a project's conversation retention.
func (a *Auth) SetRetention(ctx context.Context, id string, in UpdateProjectRequest) (Project, error) {
	const op = "core.Auth.SetRetention"
	if d := in.RetentionDays; d != nil && (*d < 1 || *d > MaxRetentionDays) {
		return Project{}, BadRequest(op, "retention_days", fmt.Sprintf("retention_days must be 1..%d or null", MaxRetentionDays))
	}
	ok, err := a.store.SetProjectRetention(ctx, id, in.RetentionDays)
	if err != nil {
		return Project{}, Internal(op, err)
	}
	if !ok {
		return Project{}, E(op, CodeNotFound, "Project not found")
	}
	l, err := a.ListProjects(ctx)
	if err != nil {
		return Project{}, err
	}
	for _, p := range l.Data {
		if p.ID == id {
			return p, nil
		}
	}
	return Project{}, E(op, CodeNotFound, "Project not found")
}
