"""English and Traditional Chinese (glassnet.i18n): complete catalogs, the deck's style, no
Simplified-only character, the language chosen as gettext would, and the commands speaking it."""

import gettext
import re
from pathlib import Path

import pytest

from glassnet import cli, i18n
from glassnet.serve.words import PAGE_WORDS

babel = pytest.importorskip("babel", reason="pip install -e '.[test]'")
from babel.messages.extract import extract_from_dir  # noqa: E402
from babel.messages.pofile import read_po  # noqa: E402

ROOT = Path(__file__).parents[1]
SOURCE = ROOT / "src" / "glassnet"
PO = i18n.LOCALE_DIR / "zh_TW" / "LC_MESSAGES" / "glassnet.po"
STATIC = SOURCE / "serve" / "static"


def source_messages() -> set[str]:
    """Every message the code marks with _() or N_(), as pybabel extract finds them."""
    found = extract_from_dir(str(SOURCE), method_map=[("**.py", "python")])
    return {message for _, _, message, _, _ in found}


@pytest.fixture(scope="module")
def catalog():
    with PO.open(encoding="utf-8") as f:
        return read_po(f, locale="zh_TW")


def test_every_message_has_its_traditional_chinese(catalog):
    translated = {m.id: m.string for m in catalog if m.id}
    missing = sorted(source_messages() - set(translated))
    assert not missing, f"not in {PO.name} (pybabel extract, then update): {missing}"
    empty = sorted(k for k, v in translated.items() if not v or "fuzzy" in catalog[k].flags)
    assert not empty, f"untranslated or fuzzy: {empty}"
    stale = sorted(set(translated) - source_messages())
    assert not stale, f"in {PO.name} but no longer in the code: {stale}"


def test_the_compiled_catalog_is_the_source_catalog(catalog):
    """The .mo that gettext reads says what the .po says (pybabel compile after each edit)."""
    with (PO.with_suffix(".mo")).open("rb") as f:
        compiled = gettext.GNUTranslations(f)
    for message in catalog:
        if message.id:
            assert compiled.gettext(message.id) == message.string, message.id


def test_placeholders_survive_translation(catalog):
    for message in catalog:
        if message.id:
            wanted = sorted(re.findall(r"\{\w*\}", message.id))
            assert sorted(re.findall(r"\{\w*\}", message.string)) == wanted, message.id


def test_no_simplified_only_character_slips_in(catalog):
    import hanzidentifier

    for message in catalog:
        simplified = {c for c in message.string
                      if hanzidentifier.has_chinese(c)
                      and hanzidentifier.identify(c) == hanzidentifier.SIMPLIFIED}  # fmt: skip
        assert not simplified, f"{sorted(simplified)} in {message.string!r}"


GLOSSARY = {  # the deck's style: the Chinese term with the English one beside it
    "gradient descent": "梯度下降",
    "learning rate": "學習率",
    "finite differences": "有限差分",
    "feature map": "特徵圖",
    "backward pass": "反向傳遞",
    "forward pass": "前向傳遞",
    "neuron": "神經元",
}


CJK = "\u4e00-\u9fff"  # the ideographs


def test_chinese_sentences_use_full_width_punctuation(catalog):
    """，：；（） in Chinese sentences, as Traditional Chinese text sets them; ASCII stays inside
    formulas, shapes and English terms (z = W·a + b, (batch, T, …), 2,000)."""
    beside = re.compile(f"[{CJK}][,:;(]|[,:;)][{CJK}]")
    for message in catalog:
        if message.id:
            assert not beside.search(message.string), message.string


def test_technical_words_keep_their_english_beside_them(catalog):
    for message in catalog:
        for english, chinese in GLOSSARY.items():
            if english in message.id.lower():
                said = message.string
                assert chinese in said and english in said.lower(), (message.id, said)


def test_the_page_uses_only_words_in_the_catalog():
    page = (STATIC / "index.html").read_text() + (STATIC / "page.js").read_text()
    used = set(re.findall(r'data-i18n="([^"]+)"', page)) | set(re.findall(r'\bt\("([^"]+)"', page))
    assert used <= set(PAGE_WORDS), sorted(used - set(PAGE_WORDS))
    assert set(PAGE_WORDS) <= used, sorted(set(PAGE_WORDS) - used)  # and no word left over


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({"LANG": "zh_TW.UTF-8"}, "zh_TW"),
        ({"LANG": "en_US.UTF-8"}, "en"),
        ({"LC_ALL": "zh_TW.UTF-8", "LANG": "en_US.UTF-8"}, "zh_TW"),
        ({"LANGUAGE": "fr:zh_TW", "LANG": "en_US.UTF-8"}, "zh_TW"),
        ({"LANG": "zh_CN.UTF-8"}, "en"),  # Simplified Chinese: glassnet does not speak it
        ({"LANG": "C.UTF-8"}, "en"),
        ({}, "en"),
    ],
)
def test_the_language_comes_from_the_environment_as_gettext_reads_it(
    monkeypatch, environment, expected
):
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"):
        monkeypatch.delenv(variable, raising=False)
    for variable, value in environment.items():
        monkeypatch.setenv(variable, value)
    assert i18n.set_language() == expected


@pytest.mark.parametrize("name", ["zh-TW", "zh_TW", "zh_TW.UTF-8", "zh-Hant", "zh-hant-tw"])
def test_names_of_traditional_chinese(name):
    assert i18n.normalize(name) == "zh_TW"


def test_a_language_glassnet_does_not_speak_is_refused_with_the_choices(capsys):
    with pytest.raises(ValueError, match=r"Received language 'fr'. glassnet speaks en \(English\), "
                                         r"zh-TW \(繁體中文\)."):  # fmt: skip
        i18n.set_language("fr")
    with pytest.raises(SystemExit):
        cli.main(["descent", "--lang", "fr"])
    assert "argument --lang: 'fr': glassnet speaks en, zh-TW" in capsys.readouterr().err


def test_descent_speaks_traditional_chinese(capsys):
    assert cli.main(["descent", "--lang", "zh-TW", "--steps", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("在 C(w) = (w − 3)² + 1 上做梯度下降 Gradient Descent")
    assert "學習率 Learning Rate 0.1" in out and "走了 3 步還在慢慢爬" in out


def test_explain_speaks_traditional_chinese_with_the_same_numbers(capsys):
    assert cli.main(["explain", "--lang", "en"]) == 0
    english = capsys.readouterr().out
    assert cli.main(["explain", "--lang", "zh-TW"]) == 0
    chinese = capsys.readouterr().out
    assert "前向傳遞 FORWARD PASS" in chinese and "反向傳遞 BACKWARD PASS" in chinese
    assert "損失 LOSS — C = mean_squared_error(y, a) = 0.2054" in chinese
    numbers = re.compile(r"-?\d+\.\d+")
    assert numbers.findall(english) == numbers.findall(chinese)


def test_predict_speaks_traditional_chinese(digits_model, tmp_path, capsys):
    from tests.photos import draw_digit

    image = draw_digit(tmp_path / "one.png")
    assert cli.main(["predict", str(digits_model), str(image), "--lang", "zh-TW"]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert first.startswith(f"{image}：") and "（把握 " in first


def test_the_environment_chooses_the_commands_language(monkeypatch, capsys):
    monkeypatch.setenv("LANG", "zh_TW.UTF-8")
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(variable, raising=False)
    assert cli.main(["descent", "--steps", "2"]) == 0
    assert "梯度下降 Gradient Descent" in capsys.readouterr().out


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["predict"], ["explain"],
                                     ["descent"], ["serve"], ["info"]])  # fmt: skip
def test_every_help_speaks_traditional_chinese(command, monkeypatch, capsys):
    monkeypatch.setenv("LANG", "zh_TW.UTF-8")
    for variable in ("LANGUAGE", "LC_ALL", "LC_MESSAGES"):
        monkeypatch.delenv(variable, raising=False)
    with pytest.raises(SystemExit):
        cli.main([*command, "--help"])
    out = capsys.readouterr().out
    assert out.startswith("用法：glassnet") and "顯示這段說明後結束" in out
    assert "show this help" not in out and "options:" not in out
    chinese = [line for line in out.splitlines()[1:] if re.search("[\u4e00-\u9fff]", line)]
    assert len(chinese) >= 2, out


def test_the_commands_say_their_results_and_errors_in_traditional_chinese(
    digits_model, tmp_path, capsys
):
    assert cli.main(["evaluate", str(digits_model), "--lang", "zh-TW"]) == 0
    assert "測試集上（" in capsys.readouterr().out
    assert cli.main(["info", "--lang", "zh-TW"]) == 0
    assert "資料：" in capsys.readouterr().out
    assert cli.main(["evaluate", str(tmp_path / "none.keras"), "--lang", "zh-TW"]) == 1
    assert capsys.readouterr().err.startswith("glassnet: 錯誤：")
    with pytest.raises(SystemExit):
        cli.main(["train", "--epochs", "0", "--lang", "zh-TW"])
    err = capsys.readouterr().err
    assert "參數 --epochs：需要一個正整數，收到的是 0" in err and "用法：" in err


def test_no_message_hides_where_the_extractor_cannot_see_it():
    """pybabel does not look inside f-strings: a message there would never be translated."""
    hidden = [
        f"{path.relative_to(SOURCE)}:{number}"
        for path in SOURCE.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if re.search(r"\{_\(|\{N_\(", line)
    ]
    assert not hidden, hidden


def test_explain_rnn_speaks_traditional_chinese(capsys):
    assert cli.main(["explain", "--rnn", "--lang", "zh-TW"]) == 0
    out = capsys.readouterr().out
    assert "沿時間反向傳遞 BACKWARD THROUGH TIME" in out and "(每個單元 Unit 一列)" in out
