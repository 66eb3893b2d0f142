package server

import (
	"context"
	"fmt"

	"golang.org/x/crypto/bcrypt"

	"github.com/cairnkv/cairn/consensus"
)

// BcryptCost is the bcrypt cost of stored password hashes (etcd's, the
// library's default).
const BcryptCost = 10

// authAPI is the auth half of a backend, shared by Member and Local: it
// reads the applied registry and turns changes into auth operations,
// hashing passwords before anything is proposed.
type authAPI struct {
	state func() *AuthState
	do    func(context.Context, *authOp) (authOutcome, error)
}

// AuthState returns the auth registry as of the last applied entry.
func (a authAPI) AuthState() *AuthState { return a.state() }

// EnableAuth enables auth. The root user must exist; a missing guest
// role is created with the access g.
func (a authAPI) EnableAuth(ctx context.Context, g GuestAccess) error {
	_, err := a.do(ctx, &authOp{op: authOpEnable, guest: g})
	return err
}

// DisableAuth disables auth.
func (a authAPI) DisableAuth(ctx context.Context) error {
	_, err := a.do(ctx, &authOp{op: authOpDisable})
	return err
}

// PutUser creates or changes a user (see UserMode). It returns the user
// as stored and whether it was created by a UserCreateOrUpdate.
func (a authAPI) PutUser(ctx context.Context, c UserChange) (AuthUser, bool, error) {
	o := &authOp{op: authOpPutUser, mode: c.Mode, name: c.Name, roles: c.Roles, grant: c.Grant, revoke: c.Revoke}
	if c.Mode < UserCreate || c.Mode > UserUpdate {
		return AuthUser{}, false, fmt.Errorf("server: bad user mode %d", c.Mode)
	}
	if c.Password != "" {
		if len(c.Password) > 72 {
			return AuthUser{}, false, &AuthError{Kind: AuthPasswordTooLong, Name: c.Name}
		}
		h, err := bcrypt.GenerateFromPassword([]byte(c.Password), BcryptCost)
		if err != nil {
			return AuthUser{}, false, err
		}
		o.hash = string(h)
	}
	out, err := a.do(ctx, o)
	return out.user, out.created, err
}

// DeleteUser removes a user.
func (a authAPI) DeleteUser(ctx context.Context, name string) error {
	_, err := a.do(ctx, &authOp{op: authOpDeleteUser, name: name})
	return err
}

// CreateRole creates a role with the patterns given.
func (a authAPI) CreateRole(ctx context.Context, r AuthRole) error {
	_, err := a.do(ctx, &authOp{op: authOpCreateRole, name: r.Name, read: r.Read, write: r.Write})
	return err
}

// UpdateRole grants and revokes a role's patterns and returns the role
// as stored.
func (a authAPI) UpdateRole(ctx context.Context, c RoleChange) (AuthRole, error) {
	out, err := a.do(ctx, &authOp{op: authOpUpdateRole, name: c.Name, grantPerms: c.Grant, revokePerms: c.Revoke})
	return out.role, err
}

// DeleteRole removes a role.
func (a authAPI) DeleteRole(ctx context.Context, name string) error {
	_, err := a.do(ctx, &authOp{op: authOpDeleteRole, name: name})
	return err
}

// proposeAuth proposes an auth operation and waits for it to be applied.
func (m *Member) proposeAuth(ctx context.Context, o *authOp) (authOutcome, error) {
	id := m.nextID.Add(1)
	res := m.awaitResult(ctx, proposal{id: id, data: encodeAuthOp(id, o)})
	out, _ := res.out.(authOutcome)
	return out, res.err
}

// applyAuthEntry applies an auth entry to a copy of the registry, which
// replaces it unless the change is refused; the refusal (an *AuthError)
// or the outcome goes to the waiter.
func (m *Member) applyAuthEntry(e consensus.Entry, d entry) {
	a := m.authView.Load().clone()
	out, err := a.apply(d.auth)
	if err == nil {
		m.authView.Store(a)
		m.log.Info().Uint64("index", e.Index).Str("change", d.auth.describe()).Msg("auth changed")
	}
	m.store.MarkApplied(e.Index)
	m.trigger(d.id, result{err: err, out: out})
}
