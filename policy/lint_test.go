package policy

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// TestRenderedPoliciesLintClean: everything berth renders must lint clean
// (the administrator variant only with its admin-access error).
func TestRenderedPoliciesLintClean(t *testing.T) {
	for name, p := range renderCases {
		for _, k := range Kinds {
			r, err := Render(k, p)
			if err != nil {
				t.Fatal(err)
			}
			fs, err := Lint(name+"-"+string(k)+".json", r.JSON())
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range fs {
				t.Errorf("%s", f)
			}
		}
	}
	p := renderCases["full"]
	p.Administrator = true
	r, _ := Render(KindProvisioner, p)
	fs, _ := Lint("admin.json", r.JSON())
	if len(fs) != 1 || fs[0].ID != "admin-access" || fs[0].Severity != SeverityError {
		t.Errorf("administrator provisioner findings: %v", fs)
	}
}

// TestLintCorpus runs the linter over testdata/lint. A file's first line
// (or a sibling NAME.want file for JSON) lists the finding IDs it must
// produce, as "want: id id ..."; "want:" alone means clean.
func TestLintCorpus(t *testing.T) {
	files, err := filepath.Glob("testdata/lint/*")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, ".want") {
			continue
		}
		n++
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		wantData, err := os.ReadFile(f + ".want")
		if err != nil {
			t.Errorf("%s: no .want file", f)
			continue
		}
		want := strings.Fields(string(wantData))
		sort.Strings(want)
		fs, err := Lint(filepath.Base(f), data)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, x := range fs {
			got = append(got, x.ID)
		}
		sort.Strings(got)
		if strings.Join(got, " ") != strings.Join(want, " ") {
			var lines []string
			for _, x := range fs {
				lines = append(lines, x.String())
			}
			t.Errorf("%s: findings %v, want %v\n%s", f, got, want, strings.Join(lines, "\n"))
		}
	}
	if n < 10 {
		t.Errorf("only %d corpus files", n)
	}
}

// TestLintSeverityConsistent: administrator access is an error however it
// is granted, and --fail-on's threshold orders severities.
func TestLintSeverityConsistent(t *testing.T) {
	for _, c := range []struct{ name, doc, id string }{
		{"inline", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`, "admin-policy"},
		{"managed", `{"AssumeRolePolicyDocument":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]},
			"ManagedPolicyArns":["arn:aws:iam::aws:policy/AdministratorAccess"]}`, "admin-access"},
		{"template", `{"Resources":{"R":{"Type":"AWS::IAM::Role","Properties":{"AssumeRolePolicyDocument":{"Version":"2012-10-17",
			"Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]},
			"ManagedPolicyArns":[{"Fn::Sub":"arn:${AWS::Partition}:iam::aws:policy/AdministratorAccess"}]}}}}`, "admin-access"},
	} {
		fs, err := Lint(c.name, []byte(c.doc))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, f := range fs {
			if f.ID == c.id {
				found = true
				if f.Severity != SeverityError {
					t.Errorf("%s: %s is a %s, want error", c.name, f.ID, f.Severity)
				}
			}
		}
		if !found {
			t.Errorf("%s: no %s finding in %v", c.name, c.id, fs)
		}
	}
	warn := []Finding{{ID: "x", Severity: SeverityWarning}}
	if AtLeast(warn, SeverityError) || !AtLeast(warn, SeverityWarning) || AtLeast(nil, SeverityInfo) {
		t.Error("AtLeast orders severities wrongly")
	}
}
