//! Matrix expansion against GitHub's documented examples and its parser's rules.

use super::*;

fn json(text: &str) -> Value {
    Value::from_json(&serde_json::from_str(text).unwrap())
}

/// Each leg as compact JSON, keys in leg order.
fn expand_json(matrix: &str) -> Vec<String> {
    expand(&json(matrix))
        .unwrap()
        .into_iter()
        .map(|leg| Value::object(leg).to_json().to_string())
        .collect()
}

fn expand_err(matrix: &str) -> MatrixError {
    expand(&json(matrix)).unwrap_err()
}

#[test]
fn cross_product_varies_the_first_vector_slowest() {
    assert_eq!(
        expand_json(r#"{"os":["a","b"],"node":[1,2]}"#),
        [
            r#"{"os":"a","node":1}"#,
            r#"{"os":"a","node":2}"#,
            r#"{"os":"b","node":1}"#,
            r#"{"os":"b","node":2}"#,
        ]
    );
    assert_eq!(
        expand_json(r#"{"a":[1],"b":[1,2,3],"c":[true,false]}"#).len(),
        6
    );
}

#[test]
fn vector_values_may_be_objects_and_arrays() {
    assert_eq!(
        expand_json(r#"{"cfg":[{"node":12,"npm":[6,7]},{"node":14}],"v":[[1,2]]}"#),
        [
            r#"{"cfg":{"node":12,"npm":[6,7]},"v":[1,2]}"#,
            r#"{"cfg":{"node":14},"v":[1,2]}"#,
        ]
    );
}

/// GitHub docs, "Expanding or adding matrix configurations" (the fruit/animal example).
#[test]
fn docs_include_example_fruit_and_animal() {
    let legs = expand_json(
        r#"{
            "fruit": ["apple", "pear"],
            "animal": ["cat", "dog"],
            "include": [
                {"color": "green"},
                {"color": "pink", "animal": "cat"},
                {"fruit": "apple", "shape": "circle"},
                {"fruit": "banana"},
                {"fruit": "banana", "animal": "cat"}
            ]
        }"#,
    );
    assert_eq!(
        legs,
        [
            r#"{"fruit":"apple","animal":"cat","color":"pink","shape":"circle"}"#,
            r#"{"fruit":"apple","animal":"dog","color":"green","shape":"circle"}"#,
            r#"{"fruit":"pear","animal":"cat","color":"pink"}"#,
            r#"{"fruit":"pear","animal":"dog","color":"green"}"#,
            r#"{"fruit":"banana"}"#,
            r#"{"fruit":"banana","animal":"cat"}"#,
        ]
    );
}

/// GitHub docs, "Example: Expanding configurations".
#[test]
fn docs_include_adds_a_value_to_one_leg() {
    let legs = expand_json(
        r#"{"os":["windows-latest","ubuntu-latest"],"node":[14,16],
            "include":[{"os":"windows-latest","node":16,"npm":6}]}"#,
    );
    assert_eq!(
        legs,
        [
            r#"{"os":"windows-latest","node":14}"#,
            r#"{"os":"windows-latest","node":16,"npm":6}"#,
            r#"{"os":"ubuntu-latest","node":14}"#,
            r#"{"os":"ubuntu-latest","node":16}"#,
        ]
    );
}

/// The rule of GitHub docs' "Example: Adding configurations": an include that would
/// overwrite an original value becomes a new leg instead.
#[test]
fn docs_include_that_would_overwrite_becomes_a_new_leg() {
    let legs = expand_json(
        r#"{"os":["windows-latest","ubuntu-latest"],"version":[10,12,14],
            "include":[{"os":"windows-latest","version":17}]}"#,
    );
    assert_eq!(legs.len(), 7);
    assert_eq!(legs[6], r#"{"os":"windows-latest","version":17}"#);
    assert!(legs[..6].iter().all(|l| !l.contains("17")));
}

/// GitHub docs, "Excluding matrix configurations": 12 combinations, 3 excluded.
#[test]
fn docs_exclude_example_removes_partial_matches() {
    let legs = expand_json(
        r#"{"os":["macos-latest","windows-latest"],"version":[12,14,16],
            "environment":["staging","production"],
            "exclude":[
                {"os":"macos-latest","version":12,"environment":"production"},
                {"os":"windows-latest","version":16}
            ]}"#,
    );
    assert_eq!(legs.len(), 9);
    assert!(
        !legs.contains(
            &r#"{"os":"macos-latest","version":12,"environment":"production"}"#.to_string()
        )
    );
    assert!(
        !legs
            .iter()
            .any(|l| l.contains("windows-latest") && l.contains(":16"))
    );
    assert!(
        legs.contains(&r#"{"os":"macos-latest","version":12,"environment":"staging"}"#.to_string())
    );
}

/// GitHub docs: "an include-only matrix", one leg per entry, keys as written.
#[test]
fn include_only_matrix_gives_one_leg_per_entry() {
    assert_eq!(
        expand_json(
            r#"{"include":[{"site":"production","datacenter":"site-a"},
                           {"site":"staging","datacenter":"site-b"}]}"#
        ),
        [
            r#"{"site":"production","datacenter":"site-a"}"#,
            r#"{"site":"staging","datacenter":"site-b"}"#,
        ]
    );
}

/// The parser's own doc examples: include matching a leg adds values; partial include
/// entries that match nothing become new legs.
#[test]
fn include_partial_entries() {
    assert_eq!(
        expand_json(
            r#"{"arch":["x64","x86"],"os":["linux","windows"],
                "include":[{"arch":"x64"},{"os":"macos"}]}"#
        ),
        [
            r#"{"arch":"x64","os":"linux"}"#,
            r#"{"arch":"x64","os":"windows"}"#,
            r#"{"arch":"x86","os":"linux"}"#,
            r#"{"arch":"x86","os":"windows"}"#,
            r#"{"os":"macos"}"#,
        ]
    );
}

/// act `evalmatrix` `_additionalProperties_0`: an include naming one vector plus an extra.
#[test]
fn include_with_vector_key_and_extra_extends_matching_leg() {
    assert_eq!(
        expand_json(r#"{"x":[0],"y":[0],"z":[0],"include":[{"def":"val","z":0}]}"#),
        [r#"{"x":0,"y":0,"z":0,"def":"val"}"#]
    );
}

/// act `matrix-include-exclude`: 8 combinations, 1 excluded, 1 new leg from include.
#[test]
fn exclude_then_include_as_in_act_testdata() {
    let legs = expand_json(
        r#"{"os":["ubuntu-18.04","macos-latest"],"node":[4,6,8,10],
            "exclude":[{"os":"macos-latest","node":4}],
            "include":[{"os":"ubuntu-16.04","node":10}]}"#,
    );
    assert_eq!(legs.len(), 8);
    assert_eq!(legs[3], r#"{"os":"ubuntu-18.04","node":10}"#);
    assert_eq!(legs[4], r#"{"os":"macos-latest","node":6}"#);
    assert_eq!(legs[7], r#"{"os":"ubuntu-16.04","node":10}"#);
}

#[test]
fn include_can_bring_back_an_excluded_combination() {
    assert_eq!(
        expand_json(r#"{"a":[1,2],"exclude":[{"a":2}],"include":[{"a":2,"extra":true}]}"#),
        [r#"{"a":1}"#, r#"{"a":2,"extra":true}"#]
    );
}

#[test]
fn later_includes_overwrite_added_values_but_keep_their_position() {
    assert_eq!(
        expand_json(r#"{"a":[1],"include":[{"x":"first","y":1},{"x":"second"},{"a":1,"z":3}]}"#),
        [r#"{"a":1,"x":"second","y":1,"z":3}"#]
    );
}

#[test]
fn extras_only_include_becomes_a_leg_when_everything_was_excluded() {
    assert_eq!(
        expand_json(r#"{"a":[1],"exclude":[{"a":1}],"include":[{"color":"green"}]}"#),
        [r#"{"color":"green"}"#]
    );
    assert!(expand_json(r#"{"a":[1],"exclude":[{"a":1}]}"#).is_empty());
}

#[test]
fn unmatched_include_lists_vector_keys_before_extras() {
    assert_eq!(
        expand_json(r#"{"os":["a"],"include":[{"color":"pink","os":"b"}]}"#),
        [r#"{"os":"a"}"#, r#"{"os":"b","color":"pink"}"#]
    );
}

#[test]
fn matching_uses_expression_equality() {
    // Strings ignore case and numbers match numeric strings, as `==` does.
    assert_eq!(
        expand_json(
            r#"{"os":["Ubuntu"],"node":["14"],"include":[{"os":"ubuntu","node":14,"tag":"x"}]}"#
        ),
        [r#"{"os":"Ubuntu","node":"14","tag":"x"}"#]
    );
    assert_eq!(
        expand_json(r#"{"os":["Ubuntu","mac"],"exclude":[{"os":"UBUNTU"}]}"#),
        [r#"{"os":"mac"}"#]
    );
    // Vector keys are found ignoring case, so `OS` filters instead of adding a value.
    assert_eq!(
        expand_json(r#"{"os":["a","b"],"include":[{"OS":"b","x":1}]}"#),
        [r#"{"os":"a"}"#, r#"{"os":"b","x":1}"#]
    );
}

#[test]
fn object_values_match_partially() {
    let legs = expand_json(
        r#"{"cfg":[{"node":12,"npm":6},{"node":14,"npm":7}],
            "exclude":[{"cfg":{"node":12}}],
            "include":[{"cfg":{"npm":7},"latest":true}]}"#,
    );
    assert_eq!(legs, [r#"{"cfg":{"node":14,"npm":7},"latest":true}"#]);
}

#[test]
fn validation_errors_use_githubs_messages() {
    assert_eq!(
        expand_err(r#"{"os":[],"version":[10,12]}"#).to_string(),
        "Matrix vector 'os' does not contain any values"
    );
    assert_eq!(
        expand_err(r#"{"os":["a"],"exclude":[{"node":1}]}"#).to_string(),
        "Matrix exclude key 'node' does not match any key within the matrix"
    );
    assert_eq!(
        expand_err(r#"{"include":[]}"#).to_string(),
        "Matrix must define at least one vector"
    );
    assert_eq!(expand_err("{}"), MatrixError::NoVectors);
    assert_eq!(
        expand_err(r#"{"os":["a"],"include":[{}]}"#),
        MatrixError::EmptyInclude { index: 0 }
    );
    assert_eq!(
        expand_err(r#"{"os":["a"],"exclude":[{"os":"a"},{}]}"#),
        MatrixError::EmptyExclude { index: 1 }
    );
}

#[test]
fn shape_errors_name_the_offending_part() {
    assert_eq!(
        expand_err(r#"["a"]"#),
        MatrixError::NotAnObject { kind: Kind::Array }
    );
    assert_eq!(
        expand_err(r#"{"os":"ubuntu"}"#),
        MatrixError::VectorNotArray {
            key: "os".into(),
            kind: Kind::String
        }
    );
    assert_eq!(
        expand_err(r#"{"os":["a"],"include":{"x":1}}"#),
        MatrixError::IncludeNotArray { kind: Kind::Object }
    );
    assert_eq!(
        expand_err(r#"{"os":["a"],"exclude":"x"}"#),
        MatrixError::ExcludeNotArray { kind: Kind::String }
    );
    assert_eq!(
        expand_err(r#"{"os":["a"],"include":[{"x":1},2]}"#),
        MatrixError::IncludeItemNotObject {
            index: 1,
            kind: Kind::Number
        }
    );
    assert_eq!(
        expand_err(r#"{"os":["a"],"exclude":[null]}"#),
        MatrixError::ExcludeItemNotObject {
            index: 0,
            kind: Kind::Null
        }
    );
}

#[test]
fn special_keys_are_case_sensitive() {
    // `Include` is an ordinary vector for GitHub, so it must be an array of values.
    assert_eq!(
        expand_json(r#"{"Include":[{"a":1}]}"#),
        [r#"{"Include":{"a":1}}"#]
    );
}

fn vector(n: usize) -> String {
    let items: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    format!("[{}]", items.join(","))
}

#[test]
fn at_most_256_legs() {
    assert_eq!(
        expand_json(&format!(r#"{{"a":{},"b":{}}}"#, vector(16), vector(16))).len(),
        256
    );
    assert_eq!(
        expand_err(&format!(r#"{{"a":{},"b":{}}}"#, vector(16), vector(17))),
        MatrixError::TooManyLegs { count: 272 }
    );
    // Includes count too.
    assert_eq!(
        expand_err(&format!(
            r#"{{"a":{},"b":{},"include":[{{"a":99}}]}}"#,
            vector(16),
            vector(16)
        )),
        MatrixError::TooManyLegs { count: 257 }
    );
    // Exclude applies before the limit.
    assert_eq!(
        expand_json(&format!(
            r#"{{"a":{},"b":{},"exclude":[{{"b":16}}]}}"#,
            vector(16),
            vector(17)
        ))
        .len(),
        256
    );
}

#[test]
fn huge_cross_products_are_rejected_before_building() {
    let ten = vector(10);
    let m = format!(
        r#"{{"a":{ten},"b":{ten},"c":{ten},"d":{ten},"e":{ten},"f":{ten},"g":{ten},"h":{ten},"i":{ten},"j":{ten},"k":{ten},"l":{ten},"m":{ten},"n":{ten},"o":{ten},"p":{ten},"q":{ten},"r":{ten},"s":{ten},"t":{ten},"u":{ten},"v":{ten},"w":{ten},"x":{ten},"y":{ten},"z":{ten}}}"#
    );
    assert_eq!(
        expand_err(&m),
        MatrixError::CrossProductTooLarge {
            count: 10u128.pow(26)
        }
    );
    assert!(expand_err(&m).to_string().contains("remove vector values"));
}

#[test]
fn cli_filter_keeps_matching_legs() {
    // act `matrix-with-user-inclusions`: --matrix node:8 --matrix node:8.x --matrix os:ubuntu-18.04
    let filters: Vec<(String, String)> = [("node", "8"), ("node", "8.x"), ("os", "ubuntu-18.04")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let build = expand(&json(
        r#"{"os":["ubuntu-18.04","macos-latest"],"node":[4,6,8,10],
            "exclude":[{"os":"macos-latest","node":4}],
            "include":[{"os":"ubuntu-16.04","node":10}]}"#,
    ))
    .unwrap();
    let kept: Vec<String> = filter(build, &filters)
        .into_iter()
        .map(|l| Value::object(l).to_json().to_string())
        .collect();
    assert_eq!(kept, [r#"{"os":"ubuntu-18.04","node":8}"#]);

    let test = expand(&json(r#"{"node":["8.x","10.x","12.x","13.x"]}"#)).unwrap();
    let kept = filter(test, &filters);
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].get("node").and_then(Value::as_str), Some("8.x"));
}

#[test]
fn cli_filter_without_filters_keeps_everything_and_prints_values_plainly() {
    let legs = expand(&json(r#"{"v":[1.5,true,null,"x"]}"#)).unwrap();
    assert_eq!(filter(legs.clone(), &[]).len(), 4);
    for (text, expected) in [("1.5", 0), ("true", 1), ("null", 2), ("x", 3)] {
        let kept = filter(legs.clone(), &[("V".into(), text.into())]);
        assert_eq!(kept.len(), 1, "{text}");
        assert!(deep_equal(
            kept[0].get("v").unwrap(),
            legs[expected].get("v").unwrap()
        ));
    }
    // Values compare as text exactly: case matters.
    assert!(filter(legs, &[("v".into(), "X".into())]).is_empty());
}

#[test]
fn deep_equal_compares_structure() {
    assert!(deep_equal(
        &json(r#"{"a":[1,{"b":null}],"c":"x"}"#),
        &json(r#"{"c":"x","a":[1,{"b":null}]}"#)
    ));
    assert!(!deep_equal(&json(r#"{"a":1}"#), &json(r#"{"a":1,"b":2}"#)));
    assert!(!deep_equal(&json(r#"[1,2]"#), &json(r#"[2,1]"#)));
    assert!(!deep_equal(&json(r#""X""#), &json(r#""x""#)));
    assert!(!deep_equal(&json("1"), &json(r#""1""#)));
    assert!(!deep_equal(&Value::from(f64::NAN), &Value::from(f64::NAN)));
}

/// GitHub docs, "Adding a matrix strategy to your workflow job": the documented job order.
#[test]
fn docs_job_order() {
    assert_eq!(
        expand_json(r#"{"version":[10,12,14],"os":["ubuntu-latest","windows-latest"]}"#),
        [
            r#"{"version":10,"os":"ubuntu-latest"}"#,
            r#"{"version":10,"os":"windows-latest"}"#,
            r#"{"version":12,"os":"ubuntu-latest"}"#,
            r#"{"version":12,"os":"windows-latest"}"#,
            r#"{"version":14,"os":"ubuntu-latest"}"#,
            r#"{"version":14,"os":"windows-latest"}"#,
        ]
    );
}

#[test]
fn exclude_keys_name_vectors_ignoring_case() {
    assert_eq!(
        expand_json(r#"{"os":["a","b"],"exclude":[{"OS":"a"}]}"#),
        [r#"{"os":"b"}"#]
    );
}

#[test]
fn extras_differing_only_in_case_are_one_key_with_the_first_spelling() {
    assert_eq!(
        expand_json(r#"{"a":[1],"include":[{"Color":"red"},{"color":"blue"}]}"#),
        [r#"{"a":1,"Color":"blue"}"#]
    );
}

#[test]
fn include_filter_on_an_object_vector_adds_extras() {
    assert_eq!(
        expand_json(
            r#"{"cfg":[{"os":"linux","arch":"x64"},{"os":"mac","arch":"arm64"}],
                "include":[{"cfg":{"os":"MAC"},"runner":"macos-14"}]}"#
        ),
        [
            r#"{"cfg":{"os":"linux","arch":"x64"}}"#,
            r#"{"cfg":{"os":"mac","arch":"arm64"},"runner":"macos-14"}"#,
        ]
    );
}

#[test]
fn cli_filter_prints_integral_numbers_without_a_fraction() {
    let legs = expand(&json(r#"{"node":[8.0,8.5]}"#)).unwrap();
    let kept = filter(legs, &[("node".into(), "8".into())]);
    assert_eq!(kept.len(), 1);
    assert!(deep_equal(kept[0].get("node").unwrap(), &Value::from(8.0)));
}

#[test]
fn named_legs_show_vector_values_but_not_include_extras() {
    let named = expand_named(
        &json(
            r#"{"os":["ubuntu-latest","windows-latest"],"node":[14,16.5],
                "include":[{"os":"windows-latest","node":16.5,"npm":6},{"os":"macos-latest","npm":7}]}"#,
        ),
        "build",
    )
    .unwrap();
    let names: Vec<&str> = named.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "build (ubuntu-latest, 14)",
            "build (ubuntu-latest, 16.5)",
            "build (windows-latest, 14)",
            "build (windows-latest, 16.5)",
            "build (macos-latest, 7)",
        ]
    );
    assert_eq!(
        Value::object(named[3].matrix.clone()).to_json().to_string(),
        r#"{"os":"windows-latest","node":16.5,"npm":6}"#
    );
}

#[test]
fn named_legs_of_an_include_only_matrix_show_every_value() {
    let named = expand_named(
        &json(r#"{"include":[{"site":"production","datacenter":"site-a"}]}"#),
        "deploy",
    )
    .unwrap();
    assert_eq!(named[0].name, "deploy (production, site-a)");
}
