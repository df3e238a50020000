// helmrender renders a Helm chart's templates the way `helm template` does for the functions the
// keymaster chart uses (Go text/template, sprig, include, toYaml, fromYamlArray), so CI can check the
// chart without a helm client (none is packaged for Debian 12). Test tool only.
//
// usage: helmrender CHART_DIR RELEASE_NAME [VALUES_FILE...]
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig/v3"
	"gopkg.in/yaml.v3"
)

func readYAML(path string) map[string]interface{} {
	data, err := os.ReadFile(path)
	if err != nil {
		fail("%v", err)
	}
	out := map[string]interface{}{}
	if err := yaml.Unmarshal(data, &out); err != nil {
		fail("%s: %v", path, err)
	}
	return out
}

// merge overlays b onto a, recursively for maps (as helm merges -f values files).
func merge(a, b map[string]interface{}) map[string]interface{} {
	for k, v := range b {
		if bm, ok := v.(map[string]interface{}); ok {
			if am, ok := a[k].(map[string]interface{}); ok {
				a[k] = merge(am, bm)
				continue
			}
		}
		a[k] = v
	}
	return a
}

func fail(format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "helmrender: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) < 3 {
		fail("usage: helmrender CHART_DIR RELEASE_NAME [VALUES_FILE...]")
	}
	chartDir, release := os.Args[1], os.Args[2]
	values := readYAML(filepath.Join(chartDir, "values.yaml"))
	for _, f := range os.Args[3:] {
		values = merge(values, readYAML(f))
	}
	chart := readYAML(filepath.Join(chartDir, "Chart.yaml"))
	data := map[string]interface{}{
		"Values":  values,
		"Release": map[string]interface{}{"Name": release, "Namespace": "default", "Service": "Helm"},
		"Chart": map[string]interface{}{"Name": chart["name"], "Version": chart["version"],
			"AppVersion": chart["appVersion"]},
	}

	tpl := template.New("chart").Option("missingkey=zero")
	funcs := sprig.TxtFuncMap()
	funcs["toYaml"] = func(v interface{}) string {
		var buf bytes.Buffer
		enc := yaml.NewEncoder(&buf)
		enc.SetIndent(2)
		if err := enc.Encode(v); err != nil {
			return ""
		}
		return strings.TrimSuffix(buf.String(), "\n")
	}
	funcs["fromYamlArray"] = func(s string) []interface{} {
		var out []interface{}
		if err := yaml.Unmarshal([]byte(s), &out); err != nil {
			return []interface{}{err.Error()}
		}
		return out
	}
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var buf bytes.Buffer
		err := tpl.ExecuteTemplate(&buf, name, data)
		return buf.String(), err
	}
	tpl.Funcs(funcs)

	files, _ := filepath.Glob(filepath.Join(chartDir, "templates", "*"))
	sort.Strings(files)
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			fail("%v", err)
		}
		if _, err := tpl.New(filepath.Base(f)).Parse(string(text)); err != nil {
			fail("%s: %v", f, err)
		}
	}
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(name, "_") || !strings.HasSuffix(name, ".yaml") {
			continue
		}
		var buf bytes.Buffer
		if err := tpl.ExecuteTemplate(&buf, name, data); err != nil {
			fail("%s: %v", name, err)
		}
		fmt.Printf("---\n# Source: %s\n%s\n", name, buf.String())
	}
}
