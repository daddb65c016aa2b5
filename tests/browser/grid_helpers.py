"""Selenium helpers for dash-ag-grid tables (the instance table, the confusion table).

AG Grid renders only the rows in view (and keeps them in the DOM in any order), marks each row
with ``row-index`` (its position in the grid's order) and ``row-id`` (our ``getRowId``: the
instance id or the class index), and each cell with ``col-id``.
"""

from __future__ import annotations

from selenium.webdriver.common.by import By


def rows(driver, grid: str) -> list:
    """The rendered body rows of ``grid`` in the grid's order (loading placeholders included)."""
    found = driver.find_elements(By.CSS_SELECTOR, f"#{grid} .ag-center-cols-container .ag-row")
    return sorted(found, key=lambda r: int(r.get_attribute("row-index") or 0))


def column(driver, grid: str, col: str) -> list[str]:
    """The rendered cells' texts of column ``col``, in the grid's order."""
    return driver.execute_script(f"""
      return Array.from(document.querySelectorAll('#{grid} .ag-center-cols-container .ag-row'))
        .sort((a, b) => (+a.getAttribute('row-index')) - (+b.getAttribute('row-index')))
        .map(r => {{ const c = r.querySelector('[col-id="{col}"]'); return c ? c.textContent.trim() : null; }});""")


def cell(driver, grid: str, row_id: str | int, col: str):
    """The cell of column ``col`` in the row whose id is ``row_id``."""
    return driver.find_element(By.CSS_SELECTOR, f"#{grid} .ag-center-cols-container .ag-row[row-id='{row_id}'] "
                                                f"[col-id='{col}']")


def cell_at(driver, grid: str, row_index: int, col: str):
    """The cell of column ``col`` in the row at position ``row_index`` of the grid's order."""
    return driver.find_element(By.CSS_SELECTOR, f"#{grid} .ag-center-cols-container "
                                                f".ag-row[row-index='{row_index}'] [col-id='{col}']")


def filter_input(driver, grid: str, col: str):
    """The filter row's input of column ``col``."""
    return driver.find_element(By.CSS_SELECTOR, f"#{grid} .ag-floating-filter[col-id='{col}'] input:not([disabled])")


def selected_ids(driver, grid: str) -> list[str]:
    """Row ids of the rows the grid shows selected."""
    return [r.get_attribute("row-id") for r in
            driver.find_elements(By.CSS_SELECTOR, f"#{grid} .ag-center-cols-container .ag-row-selected")]


def loaded(driver, grid: str) -> bool:
    """Whether the rendered rows all hold data (the infinite model shows empty placeholders while a block loads)."""
    ids = column(driver, grid, "id")
    return bool(ids) and all(ids)
