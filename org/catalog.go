// Package org holds berth's account catalog: the OU tree, the accounts with
// their owner, class and budget, and the access classes that say who may
// reach which class of account, standing or through an approved escalation.
// Parse reads a catalog and checks it offline, with every error pointing at
// its line and column, so a pull request can be checked before anything
// touches AWS.
package org

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/berth-dev/berth/errkind"
)

// Account classes.
const (
	ClassTeamDev      = "team-dev"
	ClassTeamProd     = "team-prod"
	ClassCustomerProd = "customer-prod"
	ClassManagement   = "management"
)

// Classes returns the known account classes.
func Classes() []string {
	return []string{ClassTeamDev, ClassTeamProd, ClassCustomerProd, ClassManagement}
}

// Production reports whether class is reached only through escalations.
func Production(class string) bool {
	return class == ClassTeamProd || class == ClassCustomerProd || class == ClassManagement
}

// Budget defaults and limits.
const (
	// DefaultBudget is the monthly budget, in USD, of an account that names none.
	DefaultBudget = 500
	// RootOU names the organisation's root in an account's ou field.
	RootOU = "Root"
	// MinEscalation and MaxEscalation bound an escalation's maximum
	// duration; Identity Center sessions last at most 12 hours.
	MinEscalation = 15 * time.Minute
	MaxEscalation = 12 * time.Hour
	// OwnerPlaceholder in a standing group stands for the account's owner team.
	OwnerPlaceholder = "{owner}"
)

// Catalog is a parsed accounts.yaml.
type Catalog struct {
	Version       int
	OUs           []OU
	Accounts      []Account
	AccessClasses map[string]AccessClass // by account class
}

// OU is an organisational unit and the OUs under it.
type OU struct {
	Name     string
	Children []OU
	Pos      Pos
}

// CountOUs returns the number of OUs in the tree.
func (c *Catalog) CountOUs() int {
	var count func([]OU) int
	count = func(list []OU) int {
		n := len(list)
		for _, o := range list {
			n += count(o.Children)
		}
		return n
	}
	return count(c.OUs)
}

// Account is one AWS account of the catalog.
type Account struct {
	Name  string
	Email string
	// OU is the path from the root, such as "Workloads/Prod", or "Root".
	OU     string
	Owner  string
	Class  string
	Tags   map[string]string
	Budget Budget
	// Close marks an account to be closed.
	Close bool
	Pos   Pos
	// at holds the position of each field's value ("email", "tags.KEY").
	at map[string]Pos
}

// PosOf returns the position of a field's value ("email", "ou", "owner",
// "class", "tags.KEY"), or of the account when the field is absent.
func (a Account) PosOf(field string) Pos {
	if p, ok := a.at[field]; ok {
		return p
	}
	return a.Pos
}

// Budget is an account's monthly cost budget in whole USD.
type Budget struct {
	Amount int
	// Approval is required above DefaultBudget.
	Approval *Approval
}

// Approval records who approved a budget above the default, and where.
type Approval struct {
	By  string
	Ref string
}

// AccessClass says who reaches accounts of one class and how.
type AccessClass struct {
	Standing    []Standing
	Escalations []Escalation
}

// Standing is access a group always has: an Identity Center assignment of
// a permission set.
type Standing struct {
	// Group may contain OwnerPlaceholder.
	Group         string
	PermissionSet string
	Pos           Pos
}

// Escalation is access a group may request, granted after approval for at
// most MaxDuration.
type Escalation struct {
	PermissionSet string
	Eligible      string
	Approvers     string
	MaxDuration   time.Duration
	// ForbidSelfApproval is true unless the catalog says otherwise.
	ForbidSelfApproval bool
	Pos                Pos
}

// Pos is a line and column in the catalog file, both from 1.
type Pos struct {
	Line   int `json:"line"`
	Column int `json:"column"`
}

// ErrInvalid is the kind of a catalog that parsed as YAML but breaks the
// catalog's rules; the error is an Errors listing every problem. It is not
// errkind.Invalid on purpose: like policy lint's findings, a catalog with
// errors is a checked answer (exit 1), not input berth could not read.
var ErrInvalid = errors.New("invalid account catalog")

// ErrSyntax is the kind of a file that is not YAML at all.
var ErrSyntax = errkind.New("catalog is not valid YAML", errkind.Invalid)

// Error is one problem at a place in the catalog.
type Error struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Column  int    `json:"column"`
	Message string `json:"message"`
}

func (e Error) String() string {
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Message)
}

// Errors is every problem found in a catalog, in file order.
type Errors []Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.String()
	}
	return fmt.Sprintf("%d error(s) in the account catalog:\n%s", len(es), strings.Join(lines, "\n"))
}

func (es Errors) Unwrap() error { return ErrInvalid }

// SyntaxError is a file that could not be read as YAML.
type SyntaxError struct {
	File string
	// Line is 0 when the YAML library did not say.
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Msg)
}

func (e *SyntaxError) Unwrap() error { return ErrSyntax }
