"""The tests' one stand-in for Claude as a LangChain chat model (no network, no key).

`FakeChatModel` answers `reply` — a fixed text, or a function of the prompt's messages, or (when
None) the offline extractive answer to the prompt — after waiting `delay_s` or until `release`
is set; it streams the reply word by word `pause_s` apart and reports token usage, so the core
prices it as the Claude model it names. For the real Anthropic SDK path use the fake Messages
API in `anthropic_server.py` instead.
"""

from __future__ import annotations

import re
import threading
import time
from typing import Any, Callable, Iterator

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from pydantic import ConfigDict, Field

Reply = str | Callable[[list[BaseMessage]], str] | None


class FakeChatModel(BaseChatModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    reply: Any = None  # Reply
    delay_s: float = 0.0
    pause_s: float = 0.0
    release: threading.Event = Field(default_factory=threading.Event)
    model: str = "claude-haiku-4-5"
    input_tokens: int = 100
    output_tokens: int = 20
    calls: list = Field(default_factory=list)  # the messages of every call, in order

    @property
    def _llm_type(self) -> str:
        return "fake-chat-model"

    def _text(self, messages: list[BaseMessage]) -> str:
        self.calls.append(messages)
        if self.delay_s:
            self.release.wait(self.delay_s)
        if self.reply is None:
            from knowledge.chain import parse_prompt
            from knowledge.extractive import compose_answer

            prompt = parse_prompt(messages)
            return compose_answer(prompt.question, prompt.sources)
        return self.reply(messages) if callable(self.reply) else str(self.reply)

    def _usage(self) -> dict:
        return {"input_tokens": self.input_tokens, "output_tokens": self.output_tokens,
                "total_tokens": self.input_tokens + self.output_tokens}

    def _generate(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs) -> ChatResult:
        message = AIMessage(content=self._text(messages), usage_metadata=self._usage(),
                            response_metadata={"model_name": self.model})
        return ChatResult(generations=[ChatGeneration(message=message)])

    def _stream(self, messages: list[BaseMessage], stop=None, run_manager=None, **kwargs) -> Iterator[ChatGenerationChunk]:
        pieces = re.findall(r"\S+\s*|\s+", self._text(messages))
        for piece in pieces:
            if self.pause_s:
                time.sleep(self.pause_s)
            yield ChatGenerationChunk(message=AIMessageChunk(content=piece))
        yield ChatGenerationChunk(
            message=AIMessageChunk(content="", usage_metadata=self._usage(), response_metadata={"model_name": self.model})
        )
