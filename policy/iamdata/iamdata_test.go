package iamdata

import "testing"

func TestLookups(t *testing.T) {
	tab, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if tab.Source == "" {
		t.Error("no source recorded")
	}
	for _, a := range []string{"s3:GetObject", "S3:getobject", "sts:AssumeRole", "kms:Decrypt"} {
		if _, ok := tab.Action(a); !ok {
			t.Errorf("action %s unknown", a)
		}
	}
	if _, ok := tab.Action("s3:GetObjekt"); ok {
		t.Error("misspelled action known")
	}
	if a, _ := tab.Action("logs:DescribeLogGroups"); !a.WildcardOnly() {
		t.Error("logs:DescribeLogGroups should be wildcard-only")
	}
	if n := len(tab.MatchActions("s3:Get*")); n < 10 {
		t.Errorf("s3:Get* matched %d actions", n)
	}
	keys := map[string]bool{
		"sts:ExternalId": true, "aws:SourceIp": true, "aws:PrincipalTag/team": true,
		"aws:RequestTag/x": true, "s3:prefix": true, "s3:ExistingObjectTag/k": true,
		"accounts.google.com:aud": true, "kms:ViaService": true, "s3:if-none-match": true,
		"aws:ExternalId": false, "s3:prefx": false, "nosuch:key": false, "aws:PrincipalTag/": false,
	}
	for k, want := range keys {
		if _, _, ok := tab.ConditionKey(k); ok != want {
			t.Errorf("ConditionKey(%q) = %v, want %v", k, ok, want)
		}
	}
	for k, want := range map[string]string{"aws:ExternalId": "sts:ExternalId", "aws:SourceIP4": "aws:SourceIp", "s3:prefx": "s3:prefix"} {
		if got := tab.SuggestConditionKey(k); got != want {
			t.Errorf("SuggestConditionKey(%q) = %q, want %q", k, got, want)
		}
	}
}

func TestWildcard(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"*", "", true}, {"*", "abc", true}, {"a*c", "abc", true}, {"a*c", "ab", false},
		{"a?c", "abc", true}, {"a?c", "ac", false}, {"*/data/*", "x/y/data/z", true},
		{"ab", "abc", false}, {"**a", "bba", true}, {"a*b*c", "aXbYc", true}, {"a*b*c", "aXbY", false},
	} {
		if got := Wildcard(c.p, c.s); got != c.want {
			t.Errorf("Wildcard(%q, %q) = %v", c.p, c.s, got)
		}
	}
}
