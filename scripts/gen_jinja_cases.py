#!/usr/bin/env python3
"""Regenerates tests/data/jinja_cases.json: small templates rendered by the reference engine.

The reference is Python jinja2 configured exactly as Hugging Face transformers renders chat
templates (ImmutableSandboxedEnvironment, trim_blocks, lstrip_blocks, loopcontrols, tojson as
json.dumps(ensure_ascii=False), raise_exception, strftime_now). Each case records the template,
the variables and either the expected output or that rendering must fail.

Usage: python3 scripts/gen_jinja_cases.py  (needs jinja2 3.1; the C++ tests only read the JSON)
"""
import datetime
import json
import os

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

# strftime_now is pinned so the expected output is stable; the C++ test passes the same time.
FIXED_NOW = 1700049600  # 2023-11-15 12:00 UTC: the same date in every time zone


def make_env():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.datetime.fromtimestamp(FIXED_NOW, datetime.timezone.utc).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


MESSAGES = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Hi there"},
    {"role": "assistant", "content": "Hello!", "tool_calls": [
        {"id": "c1", "type": "function",
         "function": {"name": "f", "arguments": {"b": 2, "a": "x"}}}]},
    {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image"}]},
]
DATA = {"items": [3, 1, 2], "words": ["b", "A", "c", "a"], "d": {"z": 1, "a": 2, "m": None},
        "s": "  Hello World  ", "n": 7, "f": 2.5, "t": True, "none": None, "messages": MESSAGES,
        "users": [{"name": "ann", "age": 31, "tags": ["x"]}, {"name": "Bob", "age": 25},
                  {"name": "cy", "age": 31, "tags": []}],
        "text": "Zażółć gęślą jaźń — 東京 🙂", "nested": {"a": {"b": {"c": [10, 20, 30]}}}}

CASES = [
    # --- text, comments, whitespace control ---
    ("plain_text", "hello world", {}),
    ("trailing_newline_dropped", "hello\n", {}),
    ("two_trailing_newlines", "hello\n\n", {}),
    ("crlf_normalized", "a\r\nb\rc{% if true %}\r\nx{% endif %}", {}),
    ("comment", "a{# comment #}b", {}),
    ("comment_trim_blocks", "a{# comment #}\nb", {}),
    ("comment_lstrip", "a\n   {# comment #}\nb", {}),
    ("comment_dash", "a   {#- c -#}   b", {}),
    ("var_dash_left", "a   {{- 'x' }}   b", {}),
    ("var_dash_right", "a   {{ 'x' -}}   \n\n b", {}),
    ("var_no_trim_newline", "{{ 'x' }}\nb", {}),
    ("block_trim_newline", "{% if true %}\nx\n{% endif %}\ny", {}),
    ("block_lstrip", "  {% if true %}\n  x\n  {% endif %}\n", {}),
    ("block_lstrip_not_after_text", "a {% if true %}x{% endif %}", {}),
    ("block_plus_disables_lstrip", "  {%+ if true %}x{% endif %}", {}),
    ("block_plus_disables_trim", "{% if true +%}\nx{% endif %}", {}),
    ("block_dash_both", "a  \n  {%- if true -%}  \n  x  \n  {%- endif -%}  \n  b", {}),
    ("lstrip_tabs", "\t\t{% if true %}x{% endif %}", {}),
    ("lstrip_after_var", "{{ 1 }}\n   {% if true %}x{% endif %}", {}),
    ("lstrip_start_of_template", "   {% if true %}x{% endif %}", {}),
    ("lstrip_after_dash_block", "{% if true -%}  \n  {% if true %}x{% endif %}{% endif %}", {}),
    ("unicode_space_strip", "a\u3000\u00a0{{- 'x' -}}\u2003b", {}),
    ("raw_block", "{% raw %}{{ not a var }}{% if %}{% endraw %}", {}),
    ("raw_block_dash", "a  {%- raw -%}  x  {%- endraw -%}  b", {}),
    ("raw_block_trim", "{% raw %}\nx\n{% endraw %}\ny", {}),
    ("loop_lstrip_lines", "{% for i in items %}\n  {{ i }}\n{% endfor %}\n", DATA),
    # --- literals and printing ---
    ("print_int", "{{ 42 }}|{{ -7 }}|{{ 0x1F }}|{{ 0o17 }}|{{ 0b101 }}|{{ 1_000 }}", {}),
    ("print_float", "{{ 1.0 }}|{{ 1.5e3 }}|{{ 1e20 }}|{{ 1e16 }}|{{ 1e15 }}|{{ 0.0001 }}|{{ 1e-5 }}|{{ 0.1 + 0.2 }}|{{ 1/3 }}|{{ -0.0 }}", {}),
    ("print_bool_none", "{{ true }}|{{ false }}|{{ none }}|{{ True }}|{{ None }}", {}),
    ("print_list", "{{ [1, 'a', none, true, 1.5, [2], {'k': 'v'}] }}", {}),
    ("print_tuple", "{{ (1, 2) }}|{{ (1,) }}|{{ () }}", {}),
    ("print_dict", "{{ {'a': 1, 'b': [1, 2]} }}|{{ {} }}", {}),
    ("print_repr_quotes", "{{ [\"it's\", 'say \"hi\"', 'both \\' \"', 'back\\\\slash', 'nl\\n', 'tab\\t'] }}", {}),
    ("print_unicode_repr", "{{ ['é', '東京', '\\x01', '\\u00a0'] }}", {}),
    ("string_escapes", "{{ 'a\\nb\\tc\\\\d\\'e\\\"f\\x41\\u00e9\\U0001F642\\101' }}", {}),
    ("string_adjacent", "{{ 'a' 'b' \"c\" }}", {}),
    ("print_data", "{{ d }}|{{ items }}|{{ nested }}", DATA),
    ("print_tuple_expr", "{{ 1, 2 }}", {}),
    ("print_undefined", "[{{ missing }}]", {}),
    ("print_unicode", "{{ text }}", DATA),
    # --- operators ---
    ("arith_int", "{{ 7 + 3 }}|{{ 7 - 10 }}|{{ 7 * 3 }}|{{ 7 / 2 }}|{{ 7 // 2 }}|{{ -7 // 2 }}|{{ 7 % 3 }}|{{ -7 % 3 }}|{{ 7 % -3 }}|{{ 2 ** 10 }}|{{ 2 ** -1 }}", {}),
    ("arith_float", "{{ 7.5 // 2 }}|{{ -7.5 // 2 }}|{{ 7.5 % 2 }}|{{ -7.5 % 2 }}|{{ 2.5 * 2 }}|{{ 1 + 2.0 }}|{{ 10 / 4 }}", {}),
    ("arith_bool", "{{ true + 1 }}|{{ true * 3 }}|{{ false - 1 }}", {}),
    ("unary", "{{ -n }}|{{ +n }}|{{ - -n }}|{{ -2 ** 2 }}|{{ -f }}", DATA),
    ("string_ops", "{{ 'ab' + 'cd' }}|{{ 'ab' * 3 }}|{{ 3 * 'x' }}|{{ 'a' ~ 1 ~ none ~ true }}|{{ 'ab' * 0 }}", {}),
    ("list_ops", "{{ [1, 2] + [3] }}|{{ [0] * 3 }}|{{ (1,) + (2,) }}", {}),
    ("percent_format", "{{ '%s and %d' % ('x', 3) }}|{{ '%05.2f' % 3.14159 }}|{{ '%-5s|' % 'ab' }}|{{ '%x %X %o' % (255, 255, 8) }}|{{ '%(a)s-%(b)s' % {'a': 1, 'b': 2} }}|{{ '%r' % 'q' }}|{{ '100%%' % () }}", {}),
    ("comparisons", "{{ 1 < 2 }}|{{ 2 <= 2 }}|{{ 3 > 4 }}|{{ 'a' < 'b' }}|{{ [1, 2] < [1, 3] }}|{{ 1 == 1.0 }}|{{ 1 != 2 }}|{{ 1 < 2 < 3 }}|{{ 1 < 3 < 2 }}|{{ none == none }}|{{ true == 1 }}", {}),
    ("in_operator", "{{ 'a' in 'cat' }}|{{ 2 in [1, 2] }}|{{ 'z' in d }}|{{ 'q' not in d }}|{{ 5 not in items }}|{{ 'x' in missing }}", DATA),
    ("logic", "{{ true and false }}|{{ true or false }}|{{ not true }}|{{ 0 or 'x' }}|{{ '' and 'y' }}|{{ none or [] or 'z' }}|{{ 'a' and 'b' }}|{{ not not 1 }}", {}),
    ("logic_precedence", "{{ not 1 == 2 }}|{{ true or false and false }}|{{ not false and false }}", {}),
    ("inline_if", "{{ 'y' if t else 'n' }}|{{ 'y' if none else 'n' }}|[{{ 'y' if false }}]|{{ 1 if false else 2 if false else 3 }}", DATA),
    ("concat_precedence", "{{ (1 + 2) ~ 3 * 2 }}|{{ 'a' ~ 2 * 3 }}|{{ 'a' ~ 'b' | upper }}", {}),
    ("undefined_comparisons", "{{ missing == missing }}|{{ missing != 1 }}|{{ missing is defined }}|{{ missing|length }}|{{ missing is none }}", {}),
    # --- subscripts, attributes, slicing ---
    ("subscript", "{{ items[0] }}|{{ items[-1] }}|{{ d['a'] }}|{{ d.z }}|{{ nested.a.b.c[1] }}|{{ nested['a']['b'].c[-1] }}|{{ items.0 }}", DATA),
    ("subscript_missing", "[{{ items[10] }}]|[{{ d.nope }}]|[{{ d['nope'] }}]|{{ d.nope is defined }}|{{ none.x is defined }}", DATA),
    ("dict_attr_vs_item", "{% set m = {'items': 5, 'keys': 6} %}{{ m['items'] }}|{{ m['keys'] }}|{{ m.get('items') }}", {}),
    ("string_index", "{{ 'hello'[1] }}|{{ text[2] }}|{{ text[-1] }}|{{ 'abc'[5] is defined }}", DATA),
    ("slicing", "{{ items[1:] }}|{{ items[:2] }}|{{ items[::-1] }}|{{ items[::2] }}|{{ items[-2:] }}|{{ 'hello'[1:3] }}|{{ 'hello'[::-1] }}|{{ text[3:8] }}|{{ items[5:] }}|{{ items[1:-1] }}|{{ (1,2,3)[1:] }}", DATA),
    ("messages_slicing", "{% for m in messages[1:] %}{{ m.role }},{% endfor %}", DATA),
    # --- set / namespace / with ---
    ("set_simple", "{% set x = 5 %}{{ x }}", {}),
    ("set_unpack", "{% set a, b = 1, 2 %}{{ a }}{{ b }}{% set (c, d) = [3, 4] %}{{ c }}{{ d }}", {}),
    ("set_block", "{% set x %}  inner {{ 1 + 1 }}  {% endset %}[{{ x }}]", {}),
    ("set_block_filter", "{% set x | upper | trim %}  inner  {% endset %}[{{ x }}]", {}),
    ("set_in_loop_does_not_leak", "{% set x = 'outer' %}{% for i in items %}{% set x = i %}{{ x }}{% endfor %}|{{ x }}", DATA),
    ("set_in_if_leaks", "{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}", {}),
    ("set_loop_fresh_per_iteration", "{% for i in range(3) %}[{{ y }}]{% set y = i %}{% endfor %}", {}),
    ("namespace", "{% set ns = namespace(count=0, found=false) %}{% for i in items %}{% set ns.count = ns.count + i %}{% if i == 2 %}{% set ns.found = true %}{% endif %}{% endfor %}{{ ns.count }} {{ ns.found }}", DATA),
    ("namespace_dict_arg", "{% set ns = namespace({'a': 1}, b=2) %}{{ ns.a }}{{ ns.b }}{{ ns.c is defined }}", {}),
    ("with_block", "{% with a = 1, b = 'x' %}{{ a }}{{ b }}{% endwith %}[{{ a }}]", {}),
    # --- if ---
    ("if_elif_else", "{% for v in [0, 1, 2, 3] %}{% if v == 0 %}zero{% elif v == 1 %}one{% elif v == 2 %}two{% else %}many{% endif %},{% endfor %}", {}),
    ("if_truthiness", "{% for v in [0, 1, '', 'a', [], [0], {}, {'a': 1}, none, 0.0, 0.5] %}{{ 'T' if v else 'F' }}{% endfor %}", {}),
    ("if_undefined", "{% if missing %}yes{% else %}no{% endif %}{% if missing is not defined %}!{% endif %}", {}),
    # --- for ---
    ("for_loop_vars", "{% for x in words %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.depth }};{% endfor %}", DATA),
    ("for_previtem_nextitem", "{% for x in items %}[{{ loop.previtem }}|{{ loop.nextitem }}|{{ loop.previtem is defined }}]{% endfor %}", DATA),
    ("for_cycle", "{% for x in items %}{{ loop.cycle('odd', 'even') }} {% endfor %}", DATA),
    ("for_changed", "{% for x in [1, 1, 2, 2, 1] %}{{ loop.changed(x) }} {% endfor %}", {}),
    ("for_else", "{% for x in [] %}x{% else %}empty{% endfor %}|{% for x in items %}{{ x }}{% else %}empty{% endfor %}", DATA),
    ("for_filter", "{% for x in range(10) if x % 3 == 0 %}{{ x }}:{{ loop.index }}/{{ loop.length }} {% endfor %}", {}),
    ("for_filter_else", "{% for x in items if x > 10 %}{{ x }}{% else %}none{% endfor %}", DATA),
    ("for_dict", "{% for k in d %}{{ k }}{% endfor %}|{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}|{% for k, v in d|items %}{{ k }}{% endfor %}", DATA),
    ("for_string", "{% for c in 'héllo' %}{{ c }}.{% endfor %}", {}),
    ("for_undefined", "[{% for x in missing %}{{ x }}{% endfor %}]", {}),
    ("for_nested_loop_var", "{% for a in [1, 2] %}{% set outer = loop %}{% for b in 'xy' %}{{ outer.index }}{{ loop.index }}{{ b }} {% endfor %}{% endfor %}", {}),
    ("for_break_continue", "{% for x in range(10) %}{% if x == 2 %}{% continue %}{% endif %}{% if x == 5 %}{% break %}{% endif %}{{ x }}{% endfor %}", {}),
    ("for_unpack_pairs", "{% for a, b in [[1, 2], (3, 4)] %}{{ a + b }},{% endfor %}", {}),
    ("for_range_variants", "{{ range(3)|list }}|{{ range(1, 4)|list }}|{{ range(10, 0, -3)|list }}|{{ range(0)|list }}|{{ range(5, 1)|list }}", {}),
    ("for_loop_over_messages", "{% for m in messages %}{{ m['role'] }}:{{ m.content if m.content is string else m.content|length }};{% endfor %}", DATA),
    # --- macros ---
    ("macro_basic", "{% macro greet(name, greeting='Hello') %}{{ greeting }}, {{ name }}!{% endmacro %}{{ greet('Ann') }} {{ greet('Bob', 'Hi') }} {{ greet(greeting='Yo', name='Cy') }}", {}),
    ("macro_missing_arg", "{% macro m(a, b) %}[{{ a }}|{{ b }}|{{ b is defined }}]{% endmacro %}{{ m(1) }}", {}),
    ("macro_default_refers_param", "{% macro m(a, b=a * 2) %}{{ a }},{{ b }}{% endmacro %}{{ m(3) }}", {}),
    ("macro_varargs_kwargs", "{% macro m(a) %}{{ a }}|{{ varargs }}|{{ kwargs }}{% endmacro %}{{ m(1, 2, 3, x=4) }}", {}),
    ("macro_recursion", "{% macro fact(n) %}{% if n <= 1 %}1{% else %}{{ n * fact(n - 1)|int }}{% endif %}{% endmacro %}{{ fact(6) }}", {}),
    ("macro_sees_globals_late", "{% macro m() %}{{ x }}{% endmacro %}{% set x = 1 %}{{ m() }}{% set x = 2 %}{{ m() }}", {}),
    ("macro_in_loop_closure", "{% for i in range(2) %}{% macro m() %}<{{ i }}>{% endmacro %}{{ m() }}{% endfor %}", {}),
    ("macro_call_block", "{% macro wrap(tag) %}<{{ tag }}>{{ caller() }}</{{ tag }}>{% endmacro %}{% call wrap('b') %}bold {{ 1 + 1 }}{% endcall %}", {}),
    ("macro_call_block_args", "{% macro each(xs) %}{% for x in xs %}{{ caller(x) }}{% endfor %}{% endmacro %}{% call(v) each([1, 2]) %}[{{ v }}]{% endcall %}", {}),
    ("macro_returns_string", "{% macro m() %}  x  {% endmacro %}[{{ m() }}][{{ m()|trim }}][{{ m() is string }}]", {}),
    ("macro_whitespace", "{%- macro m(x) -%}\n  {{- x -}}\n{%- endmacro -%}\n[{{ m(1) }}]", {}),
    # --- filter blocks ---
    ("filter_block", "{% filter upper %}hello {{ 'x' }}{% endfilter %}", {}),
    ("filter_block_chain", "{% filter trim|replace('a', 'o') %}  banana  {% endfilter %}", {}),
    # --- filters ---
    ("f_trim_upper_lower", "[{{ s|trim }}][{{ s|upper }}][{{ s|lower }}][{{ 'xxhixx'|trim('x') }}]", DATA),
    ("f_title_capitalize", "{{ 'hello wORLD-foo (bar) x_y'|title }}|{{ 'hELLO world'|capitalize }}|{{ \"they're here\"|title }}", {}),
    ("f_default", "{{ missing|default('dflt') }}|{{ none|default('dflt') }}|{{ ''|default('dflt', true) }}|{{ 0|d('z', boolean=true) }}|{{ 'set'|d('z') }}|{{ missing|default }}|", DATA),
    ("f_length_count", "{{ items|length }}|{{ text|length }}|{{ d|count }}|{{ ''|length }}", DATA),
    ("f_first_last", "{{ items|first }}|{{ items|last }}|{{ 'abc'|first }}|{{ 'abc'|last }}|[{{ []|first }}]|{{ d|first }}", DATA),
    ("f_join", "{{ words|join }}|{{ words|join(', ') }}|{{ users|join('/', attribute='name') }}|{{ [1, none, true]|join('-') }}|{{ 'abc'|join('.') }}", DATA),
    ("f_replace", "{{ 'aaa'|replace('a', 'b') }}|{{ 'aaa'|replace('a', 'b', 2) }}|{{ 'abc'|replace('', '-') }}|{{ 'x'|replace('x', '') }}", {}),
    ("f_map", "{{ users|map(attribute='name')|list }}|{{ words|map('upper')|list }}|{{ users|map(attribute='tags', default=['none'])|list }}|{{ items|map('string')|join }}|{{ [1.5, 2.5]|map('round')|list }}", DATA),
    ("f_select_reject", "{{ items|select('odd')|list }}|{{ items|reject('odd')|list }}|{{ [0, 1, '', 'a', none]|select|list }}|{{ items|select('greaterthan', 1)|list }}|{{ items|select('>', 1)|list }}|{{ words|select('in', ['a', 'b'])|list }}", DATA),
    ("f_selectattr", "{{ users|selectattr('age', 'equalto', 31)|map(attribute='name')|list }}|{{ users|rejectattr('tags')|map(attribute='name')|list }}|{{ users|selectattr('tags', 'defined')|map(attribute='name')|list }}|{{ messages|selectattr('role', '==', 'user')|list|length }}", DATA),
    ("f_list_string", "{{ 'abc'|list }}|{{ d|list }}|{{ (1, 2)|list }}|{{ 12|string ~ 'x' }}|{{ none|string }}", DATA),
    ("f_int_float", "{{ '42'|int }}|{{ ' 7 '|int }}|{{ '4.7'|int }}|{{ 'x'|int }}|{{ 'x'|int(5) }}|{{ 3.9|int }}|{{ -3.9|int }}|{{ '0x1A'|int(base=16) }}|{{ true|int }}|{{ '2.5'|float }}|{{ 'x'|float }}|{{ 3|float }}|{{ '1e3'|float }}|{{ none|int }}", {}),
    ("f_abs_round", "{{ -3|abs }}|{{ -2.5|abs }}|{{ 2.5|round }}|{{ 3.5|round }}|{{ 2.675|round(2) }}|{{ 7|round }}|{{ 3.14159|round(3, 'floor') }}|{{ 3.14159|round(1, 'ceil') }}|{{ -0.5|round }}|{{ 1234.5|round(-2) }}", {}),
    ("f_tojson", "{{ d|tojson }}|{{ items|tojson }}|{{ 'é<>&\\'\"'|tojson }}|{{ none|tojson }}|{{ 2.5|tojson }}|{{ users[0]|tojson }}|{{ (1, 'a')|tojson }}", DATA),
    ("f_tojson_indent", "{{ users|tojson(indent=2) }}\n{{ {'a': [], 'b': {}}|tojson(indent=4) }}\n{{ d|tojson(indent=0) }}", DATA),
    ("f_tojson_options", "{{ d|tojson(sort_keys=true) }}|{{ d|tojson(separators=(',', ':')) }}|{{ 'é'|tojson(ensure_ascii=true) }}|{{ '🙂'|tojson(ensure_ascii=true) }}|{{ 'a\\nb\\x01'|tojson }}", DATA),
    ("f_tojson_unicode", "{{ text|tojson }}|{{ messages[3]|tojson }}", DATA),
    ("f_dictsort", "{{ d|dictsort }}|{{ d|dictsort(reverse=true) }}|{{ {'b': 1, 'A': 2, 'a': 0}|dictsort }}|{{ {'b': 1, 'A': 2, 'a': 0}|dictsort(case_sensitive=true) }}|{{ {'x': 3, 'y': 1}|dictsort(by='value') }}", DATA),
    ("f_dictsort_loop", "{% for k, v in {'b': 1, 'a': 2}|dictsort %}{{ k }}{{ v }}{% endfor %}", {}),
    ("f_items", "{{ d|items|list }}|{{ missing|items|list }}", DATA),
    ("f_sort", "{{ items|sort }}|{{ items|sort(reverse=true) }}|{{ words|sort }}|{{ words|sort(case_sensitive=true) }}|{{ users|sort(attribute='age')|map(attribute='name')|list }}|{{ users|sort(attribute='age,name')|map(attribute='name')|list }}", DATA),
    ("f_unique", "{{ [1, 2, 1, 3, 2]|unique|list }}|{{ words|unique|list }}|{{ ['a', 'A', 'b']|unique(case_sensitive=true)|list }}|{{ users|unique(attribute='age')|map(attribute='name')|list }}", DATA),
    ("f_min_max_sum", "{{ items|min }}|{{ items|max }}|{{ words|min }}|{{ words|max(case_sensitive=true) }}|{{ users|max(attribute='age')|attr('name') is defined }}|{{ items|sum }}|{{ users|sum(attribute='age') }}|{{ items|sum(start=10) }}|[{{ []|max }}]", DATA),
    ("f_reverse", "{{ items|reverse|list }}|{{ 'abc'|reverse }}|{{ text|reverse }}", DATA),
    ("f_escape_safe", "{{ '<a href=\"x\">&\\'</a>'|escape }}|{{ '<b>'|e }}|{{ '<b>'|safe }}|{{ 5|safe }}", {}),
    ("f_indent", "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent(2, blank=true) }}|{{ 'a\\nb'|indent('--') }}", {}),
    ("f_center_wordcount", "[{{ 'ab'|center(7) }}][{{ 'abc'|center(8) }}]|{{ 'Hello big_world, 3 times!'|wordcount }}", {}),
    ("f_format", "{{ '%s-%s'|format('a', 1) }}|{{ '%(x)s!'|format(x=5) }}|{{ '%.3f'|format(2) }}", {}),
    ("f_truncate", "{{ 'foo bar baz qux quux'|truncate(9) }}|{{ 'foo bar baz qux quux'|truncate(9, true) }}|{{ 'short'|truncate(10) }}|{{ 'foo bar baz qux quux'|truncate(11, end='>') }}", {}),
    ("f_batch", "{{ items|batch(2)|list }}|{{ items|batch(2, 'x')|list }}", DATA),
    ("f_attr", "{{ d|attr('z') is defined }}|{{ ns_test|default('n') }}", DATA),
    ("f_chain", "{{ ' A,b , C '|lower|replace(' ', '')|trim }}|{{ messages|map(attribute='role')|unique|list|join(',') }}", DATA),
    # --- tests ---
    ("tests_types", "{% for v in [1, 1.5, 'a', [1], {'a': 1}, none, true, (1,)] %}{{ v is number }}{{ v is integer }}{{ v is float }}{{ v is string }}{{ v is sequence }}{{ v is mapping }}{{ v is iterable }}{{ v is none }}{{ v is boolean }};{% endfor %}", {}),
    ("tests_undefined_is", "{{ missing is sequence }}{{ missing is iterable }}{{ missing is mapping }}{{ missing is string }}{{ missing is number }}", {}),
    ("tests_values", "{{ 4 is even }}{{ 3 is odd }}{{ 9 is divisibleby 3 }}{{ 9 is divisibleby(4) }}{{ true is true }}{{ 1 is true }}{{ false is false }}{{ 'abc' is lower }}{{ 'ABC' is upper }}{{ 'aBc' is lower }}", {}),
    ("tests_compare", "{{ 3 is equalto 3 }}{{ 3 is eq 4 }}{{ 3 is ne 4 }}{{ 3 is lt 4 }}{{ 3 is le 3 }}{{ 3 is gt 2 }}{{ 3 is ge 4 }}{{ 3 is greaterthan 1 }}{{ 3 is lessthan 1 }}{{ 2 is in [1, 2] }}{{ 'x' is in 'xyz' }}", {}),
    ("tests_callable_defined", "{{ range is callable }}{{ 'a' is callable }}{{ 'x'.upper is callable }}{% macro m() %}{% endmacro %}{{ m is callable }}{{ none is defined }}{{ missing is undefined }}{{ 'upper' is filter }}{{ 'nope' is filter }}{{ 'odd' is test }}", {}),
    ("tests_sameas", "{{ none is sameas none }}{{ true is sameas true }}{{ 1 is sameas true }}", {}),
    ("tests_not", "{{ 1 is not string }}{{ 'a' is not string }}{{ missing is not defined }}", {}),
    # --- methods ---
    ("str_methods_strip", "[{{ s.strip() }}][{{ s.lstrip() }}][{{ s.rstrip() }}][{{ 'xxaxx'.strip('x') }}][{{ '\\n\\t a \\n'.strip() }}]", DATA),
    ("str_methods_split", "{{ 'a,b,,c'.split(',') }}|{{ '  a  b c '.split() }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'a,b,c'.rsplit(',', 1) }}|{{ '  a  b c '.rsplit(None, 1) }}|{{ '  a  b c '.split(None, 1) }}|{{ 'a b'.split(' ', 0) }}|{{ 'a\\nb\\r\\nc'.splitlines() }}|{{ ''.split(',') }}|{{ ''.split() }}", {}),
    ("str_methods_case", "{{ 'hello world'.title() }}|{{ \"they're bill's\".title() }}|{{ 'hELLO'.capitalize() }}|{{ 'Hello'.swapcase() }}|{{ 'ÉCOLE'.lower() }}|{{ 'straße'.upper() }}|{{ 'ǆ'.upper() }}|{{ 'ﬁ'.upper() }}|{{ 'İ'.lower()|length }}", {}),
    ("str_methods_search", "{{ 'hello'.startswith('he') }}{{ 'hello'.endswith('lo') }}{{ 'hello'.startswith(('x', 'h')) }}|{{ 'hello'.find('l') }}|{{ 'hello'.rfind('l') }}|{{ 'hello'.find('z') }}|{{ 'żółw'.find('w') }}|{{ 'banana'.count('an') }}|{{ 'hello'.index('e') }}", {}),
    ("str_methods_misc", "{{ 'a-b'.replace('-', '+') }}|{{ ', '.join(['x', 'y']) }}|{{ 'ab'.center(6, '*') }}|{{ 'ab'.ljust(4, '.') }}|{{ 'ab'.rjust(4) }}|{{ '42'.zfill(5) }}|{{ '-42'.zfill(5) }}|{{ 'a=b=c'.partition('=') }}|{{ 'a=b=c'.rpartition('=') }}|{{ 'prefix_x'.removeprefix('prefix_') }}|{{ 'x.txt'.removesuffix('.txt') }}", {}),
    ("str_methods_predicates", "{{ '123'.isdigit() }}{{ '12a'.isdigit() }}{{ 'abc'.isalpha() }}{{ 'ab1'.isalnum() }}{{ '  '.isspace() }}{{ ''.isspace() }}{{ 'AB'.isupper() }}{{ 'ab'.islower() }}{{ 'Ab Cd'.istitle() }}", {}),
    ("str_format_method", "{{ '{} and {}'.format('a', 'b') }}|{{ '{1}{0}'.format('a', 'b') }}|{{ '{x}!'.format(x=3) }}|{{ '{:>5}|{:<5}|{:^5}'.format('a', 'b', 'c') }}|{{ '{:.2f}'.format(3.14159) }}|{{ '{:05d}'.format(42) }}|{{ '{!r}'.format('q') }}|{{ '{{}}'.format() }}|{{ '{:*^9}'.format('mid') }}|{{ '{:+d}'.format(5) }}|{{ '{:x}'.format(255) }}|{{ '{:.1%}'.format(0.256) }}", {}),
    ("dict_methods", "{{ d.keys()|list }}|{{ d.values()|list }}|{{ d.items()|list }}|{{ d.get('a') }}|{{ d.get('q') }}|{{ d.get('q', 'dflt') }}|{{ d.get('m', 'dflt') }}", DATA),
    ("list_methods", "{{ items.index(2) }}|{{ [1, 1, 2].count(1) }}", DATA),
    ("message_get_chain", "{% for m in messages %}{{ m.get('tool_calls') is none }}{{ (m.get('reasoning') or m.get('content')) is defined }};{% endfor %}", DATA),
    # --- globals ---
    ("globals_dict_range", "{{ dict(a=1, b='x') }}|{{ range(2, 8, 2)|list }}", {}),
    ("globals_joiner", "{% set comma = joiner(', ') %}{% for x in items %}{{ comma() }}{{ x }}{% endfor %}", DATA),
    ("globals_strftime", "{{ strftime_now('%Y-%m-%d') }}", {}),
    # --- gemma-style constructs ---
    ("gemma_strip_thinking", "{%- macro strip_thinking(text) -%}\n{%- set ns = namespace(result='') -%}\n{%- for part in text.split('<channel|>') -%}\n{%- if '<|channel>' in part -%}\n{%- set ns.result = ns.result + part.split('<|channel>')[0] -%}\n{%- else -%}\n{%- set ns.result = ns.result + part -%}\n{%- endif -%}\n{%- endfor -%}\n{{- ns.result | trim -}}\n{%- endmacro -%}\n[{{ strip_thinking('a <|channel>thought\\nxx<channel|> b <|channel>t<channel|>c') }}]", {}),
    ("gemma_format_argument", "{%- macro fa(argument, escape_keys=True) -%}\n{%- if argument is string -%}{{- '<|\"|>' + argument + '<|\"|>' -}}\n{%- elif argument is boolean -%}{{- 'true' if argument else 'false' -}}\n{%- elif argument is mapping -%}{{- '{' -}}{%- set ns = namespace(found_first=false) -%}{%- for key, value in argument | dictsort -%}{%- if ns.found_first %},{% endif -%}{%- set ns.found_first = true -%}{%- if escape_keys -%}{{- '<|\"|>' + key + '<|\"|>' -}}{%- else -%}{{- key -}}{%- endif -%}:{{- fa(value, escape_keys=escape_keys) -}}{%- endfor -%}{{- '}' -}}\n{%- elif argument is sequence -%}{{- '[' -}}{%- for item in argument -%}{{- fa(item, escape_keys=escape_keys) -}}{%- if not loop.last %},{% endif -%}{%- endfor -%}{{- ']' -}}\n{%- else -%}{{- argument -}}\n{%- endif -%}\n{%- endmacro -%}\n{{ fa({'b': [1, 2.5, 'x', none, true], 'a': {'k': 'v'}}) }}|{{ fa({'q': 'w'}, escape_keys=False) }}", {}),
    ("reverse_range_scan", "{% for i in range(messages|length - 1, -1, -1) %}{{ messages[i].role[0] }}{% endfor %}", DATA),
    # --- errors (the C++ side only checks that rendering fails) ---
    ("err_undefined_attr", "{{ missing.attr }}", {}),
    ("err_undefined_item", "{{ missing['x'] }}", {}),
    ("err_undefined_nested", "{{ d.nope.deeper }}", DATA),
    ("err_undefined_arith", "{{ missing + 1 }}", {}),
    ("err_undefined_call", "{{ missing() }}", {}),
    ("err_type_concat", "{{ 'a' + 1 }}", {}),
    ("err_concat_binds_tighter_than_plus", "{{ 1 + 2 ~ 3 }}", {}),
    ("err_div_zero", "{{ 1 / 0 }}", {}),
    ("err_mod_zero", "{{ 1 % 0 }}", {}),
    ("err_compare_types", "{{ 1 < 'a' }}", {}),
    ("err_raise_exception", "{{ raise_exception('custom failure') }}", {}),
    ("err_not_callable", "{{ 'abc'() }}", {}),
    ("err_unknown_filter", "{{ 1|nosuchfilter }}", {}),
    ("err_unknown_test", "{{ 1 is nosuchtest }}", {}),
    ("err_unpack_count", "{% set a, b = [1, 2, 3] %}", {}),
    ("err_ns_assign_non_namespace", "{% set x = 1 %}{% set x.y = 2 %}", {}),
    ("err_list_append_sandbox", "{% set l = [] %}{{ l.append(1) }}", {}),
    ("err_dict_update_sandbox", "{% set m = {} %}{{ m.update({'a': 1}) }}", {}),
    ("err_in_int", "{{ 1 in 5 }}", {}),
    ("err_iterate_int", "{% for x in 5 %}{% endfor %}", {}),
    ("err_tojson_undefined", "{{ missing|tojson }}", {}),
    ("err_syntax_unclosed_if", "{% if true %}x", {}),
    ("err_syntax_unclosed_for", "{% for x in y %}x", {}),
    ("err_syntax_bad_end", "{% if true %}x{% endfor %}", {}),
    ("err_syntax_unknown_tag", "{% frobnicate %}", {}),
    ("err_syntax_bad_expr", "{{ 1 + }}", {}),
    ("err_syntax_unclosed_var", "{{ 1 + 2", {}),
    ("err_syntax_unclosed_comment", "{# never closed", {}),
    ("err_syntax_unclosed_string", "{{ 'abc }}", {}),
    ("err_syntax_include", "{% include 'x.html' %}", {}),
    ("err_syntax_break_outside", "{% break %}", {}),
    ("err_syntax_bracket_mismatch", "{{ (1 + 2] }}", {}),
]


def main():
    env = make_env()
    out = []
    for name, template, variables in CASES:
        case = {"name": name, "template": template, "vars": variables}
        try:
            case["expected"] = env.from_string(template).render(**variables)
        except Exception as e:  # noqa: BLE001 - the reference's failure is the expectation
            case["error"] = f"{type(e).__name__}: {e}"
        if name.startswith("err_") != ("error" in case):
            raise SystemExit(f"case {name}: expected {'an error' if name.startswith('err_') else 'success'}, got {case}")
        out.append(case)
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "data", "jinja_cases.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump({"generator": "scripts/gen_jinja_cases.py", "jinja2": jinja2.__version__,
                   "strftime_now_epoch": FIXED_NOW, "cases": out}, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print(f"wrote {len(out)} cases to {os.path.normpath(path)}")


if __name__ == "__main__":
    main()
