"""The "Add worker" dialog: node name, pool, concurrency and queues of a new local worker."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from pixcrawler_gui.services.workers.worker_command import DEFAULT_QUEUES, POOLS, WorkerSpec
from pixcrawler_gui.views.style import label

POOL_HELP = {
    "prefork": "Separate processes: the fastest and most robust (Linux, macOS).",
    "threads": "Threads in one process: use this on Windows.",
    "solo": "One task at a time, in the worker process itself.",
}
QUEUE_HELP = {
    "crawl": "crawl: downloads images for keywords",
    "validation": "validation: checks and finalises datasets",
    "default": "default: small housekeeping tasks",
}


class AddWorkerDialog(QDialog):
    def __init__(self, suggested: WorkerSpec, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Add worker")
        self._suggested = suggested
        self.name = QLineEdit(suggested.name, self)
        self.name.setToolTip("The worker's node name in Celery: name@computer. Must be unique.")
        self.pool = QComboBox(self)
        for pool in POOLS:
            self.pool.addItem(pool, pool)
        self.pool.setCurrentIndex(max(self.pool.findData(suggested.pool), 0))
        self.pool_help = label("", "Description", self)
        self.concurrency = QSpinBox(self)
        self.concurrency.setRange(1, 64)
        self.concurrency.setValue(suggested.concurrency)
        self.concurrency.setToolTip("How many tasks this worker runs at the same time.")
        self.queues: dict[str, QCheckBox] = {}
        queue_box = QVBoxLayout()
        queue_box.setSpacing(2)
        for queue in DEFAULT_QUEUES:
            box = QCheckBox(QUEUE_HELP.get(queue, queue), self)
            box.setChecked(queue in suggested.queues)
            box.toggled.connect(self._check)
            self.queues[queue] = box
            queue_box.addWidget(box)
        self.error = label("", "FieldError", self)
        self.error.hide()

        form = QFormLayout()
        form.addRow("Node name", self.name)
        pool_column = QVBoxLayout()
        pool_column.addWidget(self.pool)
        pool_column.addWidget(self.pool_help)
        form.addRow("Pool", pool_column)
        form.addRow("Tasks at once", self.concurrency)
        form.addRow("Queues", queue_box)

        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.ok_button = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText("Add and start")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(
            label(
                "The worker runs on this computer and takes crawl jobs from Redis. "
                "It is restarted automatically if it crashes.",
                "PageSubtitle",
                self,
            )
        )
        layout.addLayout(form)
        layout.addWidget(self.error)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self.buttons)
        layout.addLayout(row)
        self.pool.currentIndexChanged.connect(self._pool_changed)
        self.name.textChanged.connect(self._check)
        self._pool_changed()
        self.setMinimumWidth(460)

    def _pool_changed(self) -> None:
        self.pool_help.setText(POOL_HELP.get(self.pool.currentData(), ""))

    def spec(self) -> WorkerSpec:
        """The spec as entered; raises ValueError naming what is wrong."""
        queues = tuple(q for q, box in self.queues.items() if box.isChecked())
        return WorkerSpec(
            name=self.name.text().strip(),
            pool=str(self.pool.currentData()),
            concurrency=self.concurrency.value(),
            queues=queues,
            include=self._suggested.include,
        )

    def show_error(self, message: str) -> None:
        self.error.setText(message[:1].upper() + message[1:])
        self.error.setVisible(bool(message))

    def _check(self) -> None:
        try:
            self.spec()
        except ValueError as exc:
            self.show_error(str(exc))
            self.ok_button.setEnabled(False)
            return
        self.show_error("")
        self.ok_button.setEnabled(True)
