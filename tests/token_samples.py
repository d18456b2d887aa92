"""Texts of many scripts and kinds for the token-estimate tests (written for them)."""

# Real text in its own script: long lines and look-alike letters are the point.
# ruff: noqa: E501, RUF001

ENGLISH = """The committee met on Tuesday to review the proposal for the new library. After a long discussion about funding, architecture and the needs of the neighbourhood, the members agreed that the building should open in the spring of next year. Several residents spoke in favour of longer opening hours, arguing that students and shift workers could not use the current branch, which closes at five o'clock. Others worried about the cost of heating such a large hall through the winter months, and asked whether solar panels could be installed on the roof. The architect explained that the design already included insulation well beyond what the regulations require, and that the panels would pay for themselves within eight years. In the end, the vote was unanimous."""
CHINESE = """人工智能的发展正在深刻改变我们的生活方式。从智能手机上的语音助手，到自动驾驶汽车，再到医疗诊断系统，人工智能技术已经渗透到社会的各个角落。然而，这种快速发展也带来了许多挑战，例如数据隐私、算法偏见以及就业结构的变化。专家们认为，我们需要建立完善的法律法规和伦理准则，以确保人工智能技术能够造福全人类。与此同时，教育体系也必须做出相应调整，培养具有创新能力和批判性思维的人才。只有这样，我们才能在享受技术进步带来的便利的同时，有效应对其潜在的风险。历史告诉我们，每一次技术革命都会引发社会的深刻变革，而人类总能在适应中找到新的平衡。"""
JAPANESE = """昨日は友達と一緒に京都へ行きました。朝早く新幹線に乗って、お寺や神社をたくさん見学しました。特に金閣寺はとても美しくて、写真をたくさん撮りました。お昼ご飯には湯豆腐を食べましたが、とてもおいしかったです。午後は嵐山で竹林を散歩して、川沿いのカフェでお茶を飲みました。夜は祇園の町を歩いて、伝統的な雰囲気を楽しみました。また行きたいと思います。"""
KOREAN = """오늘은 날씨가 정말 좋아서 친구들과 함께 한강 공원에 갔습니다. 우리는 자전거를 타고 강변을 달리면서 시원한 바람을 즐겼습니다. 점심으로는 치킨과 떡볶이를 먹었는데 정말 맛있었습니다. 오후에는 돗자리를 펴고 앉아서 이야기를 나누며 시간을 보냈습니다. 해가 질 무렵에는 아름다운 노을을 바라보며 사진을 찍었습니다."""
RUSSIAN = """Вчера вечером мы собрались всей семьёй за большим столом, чтобы отпраздновать день рождения бабушки. Она испекла свой знаменитый яблочный пирог, а дедушка рассказывал истории о своей молодости, о том, как они познакомились на танцах в маленьком провинциальном городе. Дети слушали, затаив дыхание, а взрослые улыбались, вспоминая собственное детство."""
HINDI = """भारत एक विशाल और विविधताओं से भरा देश है। यहाँ अनेक भाषाएँ बोली जाती हैं और विभिन्न धर्मों के लोग एक साथ रहते हैं। भारतीय संस्कृति बहुत प्राचीन है और इसकी परंपराएँ हजारों वर्षों से चली आ रही हैं। त्योहारों के समय पूरा देश रंगों और खुशियों से भर जाता है।"""
ARABIC = """تعتبر القراءة من أهم الوسائل التي تساعد الإنسان على اكتساب المعرفة وتوسيع آفاقه. فمن خلال الكتب يستطيع القارئ أن يسافر عبر الزمان والمكان، وأن يتعرف على ثقافات مختلفة وتجارب إنسانية متنوعة."""
EMOJI = """Great job team 🎉🎉🎉! Launch day 🚀 went perfectly 👍👍 and customers love it ❤️😍🥰. Next up: 🍕 party 🍻🥂 on Friday 🗓️. Family 👨‍👩‍👧‍👦 welcome! 🐶🐱🐭🐹🐰🦊🐻🐼🐨🐯🦁🐮🐷🐸🐵 🇫🇷🇯🇵🇧🇷 👩🏽‍💻🧑🏿‍🚀 ✅❌⚠️"""
EMOJI_ONLY = "😀😃😄😁😆😅🤣😂🙂🙃😉😊😇🥰😍🤩😘😗☺️😚😙🥲😋😛😜🤪😝🤑🤗🤭🫢🫣🤫🤔🫡🤐🤨😐😑😶🫥😶‍🌫️😏😒🙄😬😮‍💨🤥🫨😌😔😪🤤😴😷🤒🤕🤢🤮🤧🥵🥶🥴😵😵‍💫🤯🤠🥳🥸😎🤓🧐😕🫤😟🙁☹️😮😯😲😳🥺🥹😦😧😨😰😥😢😭😱😖😣😞😓😩😫🥱"
PYTHON = '''import asyncio
from collections import OrderedDict


class LRUCache:
    """A thread-safe LRU cache with O(1) get and put."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._data: OrderedDict[str, bytes] = OrderedDict()
        self._lock = asyncio.Lock()

    async def get(self, key: str) -> bytes | None:
        async with self._lock:
            if key not in self._data:
                return None
            self._data.move_to_end(key)
            return self._data[key]

    async def put(self, key: str, value: bytes) -> None:
        async with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.capacity:
                self._data.popitem(last=False)


def fib(n: int) -> int:
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


if __name__ == "__main__":
    print([fib(i) for i in range(20)], {"x": [1, 2, 3], "y": {"z": None}})
'''
MINIFIED_JS = """!function(e,t){"object"==typeof exports&&"undefined"!=typeof module?module.exports=t():"function"==typeof define&&define.amd?define(t):(e=e||self).Vue=t()}(this,function(){"use strict";var e=Object.freeze({});function t(e){return null==e}function n(e){return null!=e}function r(e){return!0===e}function i(e){return"string"==typeof e||"number"==typeof e||"symbol"==typeof e||"boolean"==typeof e}function o(e){return null!==e&&"object"==typeof e}var a=Object.prototype.toString;function s(e){return"[object Object]"===a.call(e)}function c(e){var t=parseFloat(String(e));return t>=0&&Math.floor(t)===t&&isFinite(e)}"""
JSON_DATA = """{"users":[{"id":1024,"name":"Ada Lovelace","email":"ada@example.com","roles":["admin","editor"],"active":true,"score":98.6},{"id":2048,"name":"Alan Turing","email":"alan@example.org","roles":["viewer"],"active":false,"score":87.25},{"id":4096,"name":"Grace Hopper","email":"grace@example.net","roles":["editor","reviewer"],"active":true,"score":91.0}],"total":3,"next":null}"""
HEX = "0x" + "".join(f"{i * 2654435761 % 2**32:08x}" for i in range(200))
UUIDS = " ".join(
    f"{i * 7919:08x}-{i * 31 % 65536:04x}-{i * 17 % 65536:04x}-{i * 13 % 65536:04x}-{i * 104729:012x}"
    for i in range(100)
)
BASE64 = (
    "TWFueSBoYW5kcyBtYWtlIGxpZ2h0IHdvcmsuIFRoaXMgaXMgYSB0ZXN0IG9mIGJhc2U2NCBlbmNvZGluZyB3aXRoIHNvbWUgcmFuZG9tIGRhdGE6IHF3ZXJ0eXVpb3Bhc2RmZ2hqa2x6eGN2Ym5tMTIzNDU2Nzg5MA=="
    * 5
)
THAI = """ประเทศไทยมีวัฒนธรรมที่หลากหลายและอาหารที่อร่อยมาก นักท่องเที่ยวจากทั่วโลกมาเที่ยวชมวัดวาอารามและชายหาดที่สวยงาม"""
SAMPLES = {
    k: v for k, v in globals().items() if k.isupper() and isinstance(v, str) and k != "SAMPLES"
}
